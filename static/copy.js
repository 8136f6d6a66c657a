// Buttons with data-copy="<element id>" copy that element's text to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const code = document.getElementById(button.dataset.copy);
  try { await navigator.clipboard.writeText(code.textContent); button.textContent = "Copied"; }
  catch (e) { window.getSelection().selectAllChildren(code); }  // no clipboard over plain http: select it instead
});
