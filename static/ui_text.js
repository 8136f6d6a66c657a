// The words the admin's scripts show, in the page's language. templates/base.html renders them into
// #ui-text as JSON ({English: translated}, newsletter/web/ui_text.py lists them, the catalog translates
// them); no JS i18n library. uiText("Copied") is the word; %(name)s placeholders are filled from
// `values`; uiText.parts() keeps elements (a <code>, a <strong>) in place of their placeholders.
window.uiText = (function () {
  "use strict";
  const node = document.getElementById("ui-text");
  const words = node ? JSON.parse(node.textContent) : {};
  const PLACEHOLDER = /%\((\w+)\)s/g;
  function uiText(english, values) {
    const text = Object.prototype.hasOwnProperty.call(words, english) ? words[english] : english;
    return values ? text.replace(PLACEHOLDER, (m, name) => String(values[name])) : text;
  }
  uiText.parts = function (english, values) {
    return uiText(english).split(/(%\(\w+\)s)/).filter((p) => p !== "").map((part) => {
      const name = /^%\((\w+)\)s$/.exec(part);
      return name ? values[name[1]] : part;
    });
  };
  return uiText;
})();
