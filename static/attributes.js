// The subscriber form's attribute rows: "Add a row" adds one in place and "×" removes one.
// Without JavaScript the form still works: "Add a row" posts and the page comes back with an
// empty row more, and clearing a row's value removes its attribute on save.
(function () {
  "use strict";
  function setUp(box) {
    const template = box.querySelector("template[data-row-template]");
    const add = box.querySelector("[data-add-row]");
    if (!template || !add) return;
    box.querySelectorAll("[data-remove-row]").forEach(function (button) { button.hidden = false; });
    add.addEventListener("click", function (event) {
      event.preventDefault();
      const row = template.content.firstElementChild.cloneNode(true);
      row.querySelector("[data-remove-row]").hidden = false;
      template.before(row);
      row.querySelector('input[name="attr_key"]').focus();
    });
    box.addEventListener("click", function (event) {
      const button = event.target.closest("[data-remove-row]");
      if (!button) return;
      const row = button.closest(".attr-row");
      const next = row.nextElementSibling && row.nextElementSibling.querySelector("input");
      row.remove();
      (next || add).focus();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-attribute-rows]").forEach(setUp);
  });
})();
