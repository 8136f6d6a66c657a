// Small behaviours shared by every page (no inline handlers: the CSP allows none).
// Buttons with data-copy="<element id>" copy that element's text to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const code = document.getElementById(button.dataset.copy);
  try { await navigator.clipboard.writeText(code.textContent); button.textContent = uiText("Copied"); }
  catch (e) { window.getSelection().selectAllChildren(code); }  // no clipboard over plain http: select it instead
});

// Forms with data-confirm="question" ask before they submit.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// The menu button (templates/base.html): on a phone the links fold behind it, so the bar takes one row.
document.querySelectorAll(".menu-toggle").forEach((button) => {
  button.hidden = false;
  button.setAttribute("aria-expanded", "false");
  button.addEventListener("click", () => {
    button.setAttribute("aria-expanded", String(button.getAttribute("aria-expanded") !== "true"));
  });
});

// A table wider than the screen scrolls sideways in its .table-wrap: make that box focusable so a
// keyboard can scroll it too (WCAG 2.1.1), and only then, to keep the tab order short elsewhere.
const SCROLLS = uiText("Table (scrolls sideways)");
function focusableScrollers() {
  document.querySelectorAll(".table-wrap").forEach((box) => {
    if (box.scrollWidth > box.clientWidth + 1) {
      box.tabIndex = 0;
      if (!box.hasAttribute("role")) { box.setAttribute("role", "region"); box.setAttribute("aria-label", SCROLLS); }
    } else if (box.getAttribute("aria-label") === SCROLLS) {
      box.removeAttribute("tabindex"); box.removeAttribute("role"); box.removeAttribute("aria-label");
    }
  });
}
focusableScrollers();
window.addEventListener("resize", focusableScrollers);
