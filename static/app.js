// Small behaviours shared by every page (no inline handlers: the CSP allows none).
// Buttons with data-copy="<element id>" copy that element's text to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const code = document.getElementById(button.dataset.copy);
  try { await navigator.clipboard.writeText(code.textContent); button.textContent = "Copied"; }
  catch (e) { window.getSelection().selectAllChildren(code); }  // no clipboard over plain http: select it instead
});

// Forms with data-confirm="question" ask before they submit.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
