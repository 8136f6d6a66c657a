// The campaign body's editors (templates/admin/campaigns/_editor.html): HTML, Markdown, rich text
// (Quill) and visual (GrapesJS with its newsletter preset), one shown at a time. A switch converts
// what it can (Markdown → HTML on the server, rich text ↔ HTML, HTML → visual) and asks first when
// it loses formatting. Quill and GrapesJS are loaded from static/vendor only when first needed.
(function () {
  "use strict";

  const root = document.querySelector("[data-body-editor]");
  if (!root) return;
  const form = root.closest("form");
  const token = form.querySelector('input[name="csrf_token"]').value;
  const html = form.querySelector('textarea[name="html"]');
  const source = form.querySelector('textarea[name="body_source"]');
  const radios = [...root.querySelectorAll('input[name="body_format"]')];
  const pane = (name) => root.querySelector(`[data-pane="${name}"]`);
  const sourceLabel = pane("source").querySelector("label");
  const t = window.uiText;
  const LABELS = { html: t("HTML"), markdown: t("Markdown"), richtext: t("rich text"), visual: t("the visual editor") };
  let current = (radios.find((r) => r.checked) || radios[0]).value;
  let quill = null;
  let grapes = null;
  const loaded = {};

  function debounce(fn, ms) {
    let timer;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function loadScript(src) {
    loaded[src] = loaded[src] || new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src; script.onload = resolve; script.onerror = () => reject(new Error(t("%(src)s did not load", { src })));
      document.head.appendChild(script);
    });
    return loaded[src];
  }

  function loadCss(href) {
    if (document.querySelector(`link[href="${href}"]`)) return;
    const link = document.createElement("link");
    link.rel = "stylesheet"; link.href = href;
    document.head.appendChild(link);
  }

  // Tell the live preview (static/campaigns.js listens to the form's input events).
  function changed(field) { (field || html).dispatchEvent(new Event("input", { bubbles: true })); }

  // Rich text ------------------------------------------------------------------------------------
  async function ensureQuill() {
    if (quill) return quill;
    loadCss(root.dataset.quillCss);
    await loadScript(root.dataset.quillJs);
    quill = new window.Quill(root.querySelector("[data-richtext]"), {
      theme: "snow",
      modules: { toolbar: [[{ header: [1, 2, 3, false] }], ["bold", "italic", "underline", "link"],
                           [{ list: "ordered" }, { list: "bullet" }], ["blockquote"], ["clean"]] },
    });
    quill.on("text-change", () => { source.value = quill.root.innerHTML; changed(source); });
    return quill;
  }

  function setRichText(value) {
    quill.setContents(quill.clipboard.convert({ html: value }), "silent");
    source.value = quill.root.innerHTML;
  }

  // Visual ---------------------------------------------------------------------------------------
  async function ensureGrapes() {
    if (grapes) return grapes;
    loadCss(root.dataset.grapesCss);
    await loadScript(root.dataset.grapesJs);
    await loadScript(root.dataset.grapesPreset);
    const preset = window["grapesjs-preset-newsletter"];
    grapes = window.grapesjs.init({
      container: root.querySelector("[data-visual]"), height: "680px", fromElement: false,
      storageManager: false, plugins: [preset.default || preset], telemetry: false,
      cssIcons: root.dataset.iconsCss,  // its default is a CDN: the platform works offline
    });
    await new Promise((resolve) => grapes.onReady(resolve));
    // Exporting while a text is being typed re-renders it and moves the caret: wait until it is left.
    grapes.on("update", debounce(() => { if (!grapes.getEditing()) syncVisual(); }, 400));
    grapes.on("rte:disable", () => syncVisual());
    return grapes;
  }

  function syncVisual() {
    if (!grapes) return;
    source.value = JSON.stringify(grapes.getProjectData());
    html.value = grapes.runCommand("gjs-get-inlined-html");
    changed();
  }

  function setVisual(value) {
    grapes.setComponents(value);
    syncVisual();
  }

  // Conversions ----------------------------------------------------------------------------------
  async function serverHtml(format, text) {
    const body = new FormData();
    body.append("body_format", format); body.append("body_source", text);
    const response = await fetch(root.dataset.convertUrl, {
      method: "POST", body, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRFToken": token },
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : t("The conversion failed."));
    return data.html;
  }

  async function currentHtml() {
    if (current === "html") return html.value;
    if (current === "markdown") return serverHtml("markdown", source.value);
    if (current === "richtext") return quill ? quill.root.innerHTML : source.value;
    syncVisual();
    return html.value;
  }

  // HTML to Markdown: text, headings, emphasis, links, lists and images; layout and styles go.
  function markdownOf(node) {
    let out = "";
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) { out += child.textContent.replace(/\s+/g, " "); continue; }
      if (child.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = child.tagName.toLowerCase();
      if (["style", "script", "head", "title"].includes(tag)) continue;
      const inner = markdownOf(child);
      if (/^h[1-6]$/.test(tag)) out += `\n\n${"#".repeat(Number(tag[1]))} ${inner.trim()}\n\n`;
      else if (tag === "br") out += "  \n";
      else if (tag === "strong" || tag === "b") out += inner.trim() ? `**${inner.trim()}**` : "";
      else if (tag === "em" || tag === "i") out += inner.trim() ? `*${inner.trim()}*` : "";
      else if (tag === "a") out += `[${inner.trim()}](${child.getAttribute("href") || ""})`;
      else if (tag === "img") out += `![${child.getAttribute("alt") || ""}](${child.getAttribute("src") || ""})`;
      else if (tag === "li") out += `\n- ${inner.trim()}`;
      else if (tag === "td" || tag === "th") out += `${inner} `;
      else if (["p", "div", "ul", "ol", "table", "tr", "blockquote", "section", "hr"].includes(tag)) {
        out += `\n\n${tag === "blockquote" ? "> " : ""}${inner.trim()}\n\n`;
      } else out += inner;
    }
    return out;
  }

  function toMarkdown(value) {
    const doc = new DOMParser().parseFromString(value, "text/html");
    return markdownOf(doc.body).replace(/[ \t]+\n/g, (m) => (m.startsWith("  ") ? "  \n" : "\n"))
      .replace(/\n{3,}/g, "\n\n").trim() + "\n";
  }

  const RICH = /<(table|div|style|img|span[^>]*style)|\sstyle=/i;

  function lossWarning(from, to) {
    if (from === "visual") {
      return to === "html"
        ? t("Switching to %(editor)s keeps the email's HTML, but the visual editor's blocks cannot be rebuilt from it: styles and layout edits are lost.", { editor: LABELS[to] })
        : t("Switching to %(editor)s keeps the text and links, but the visual editor's blocks cannot be rebuilt from it: styles and layout edits are lost.", { editor: LABELS[to] });
    }
    if (to === "markdown" && from !== "markdown") {
      return t("Markdown keeps the text, headings, bold and italic, links, lists and images; the HTML's layout, tables, colours and styles are lost.");
    }
    if (to === "richtext" && from === "html" && RICH.test(html.value)) {
      return t("Rich text keeps paragraphs, headings, emphasis, links and lists; this HTML's layout tables, images and styles are lost.");
    }
    return "";
  }

  function show(format) {
    pane("html").hidden = format !== "html";
    pane("source").hidden = format !== "markdown";
    pane("richtext").hidden = format !== "richtext";
    pane("visual").hidden = format !== "visual";
    form.classList.toggle("visual-mode", format === "visual");
    if (sourceLabel && sourceLabel.firstChild) sourceLabel.firstChild.textContent = `${t("Markdown")} `;
  }

  async function switchTo(to) {
    const from = current;
    const warning = lossWarning(from, to);
    if (warning && !window.confirm(`${warning}\n\n${t("Switch to %(editor)s anyway?", { editor: LABELS[to] })}`)) {
      radios.forEach((r) => { r.checked = r.value === from; });
      return;
    }
    let body;
    try {
      body = await currentHtml();
      if (to === "html") { html.value = body; source.value = ""; }
      else if (to === "markdown") source.value = toMarkdown(body);
      else if (to === "richtext") { await ensureQuill(); setRichText(body); }
      else { await ensureGrapes(); setVisual(body); }
    } catch (error) {
      radios.forEach((r) => { r.checked = r.value === from; });
      window.alert(t("Could not switch: %(error)s", { error: error.message }));
      return;
    }
    current = to;
    show(to);
    changed();
  }

  // Insert field -------------------------------------------------------------------------------------
  function insertInto(textarea, tag) {
    textarea.focus();
    textarea.setRangeText(tag, textarea.selectionStart, textarea.selectionEnd, "end");
    changed(textarea);
  }

  function insertVisual(tag) {
    const editing = grapes.getEditing();
    if (editing) {
      grapes.Canvas.getWindow().focus();
      if (grapes.Canvas.getDocument().execCommand("insertText", false, tag)) return;
    }
    const selected = grapes.getSelected();
    if (selected && selected.is("text")) selected.append(tag);
    else grapes.getWrapper().append({ type: "text", content: tag });
    syncVisual();
  }

  function insert(tag) {
    if (current === "html") insertInto(html, tag);
    else if (current === "markdown") insertInto(source, tag);
    else if (current === "richtext") {
      const range = quill.getSelection(true);
      quill.insertText(range ? range.index : quill.getLength() - 1, tag, "user");
    } else insertVisual(tag);
  }

  const menu = root.querySelector("[data-insert-field]");
  menu.addEventListener("toggle", async () => {
    if (!menu.open) return;
    const list = menu.querySelector("[data-field-menu]");
    const params = new URLSearchParams();
    form.querySelectorAll('input[name="list_ids"]:checked').forEach((box) => params.append("list_ids", box.value));
    try {
      const data = await (await fetch(`${root.dataset.fieldsUrl}?${params}`, { headers: { "Accept": "application/json" } })).json();
      list.replaceChildren(...data.fields.map((field) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button"; button.className = "outline secondary small";
        button.textContent = field.label; button.title = field.tag; button.dataset.tag = field.tag;
        item.appendChild(button);
        return item;
      }));
    } catch (e) { list.textContent = t("The fields could not be loaded; type them instead."); }
  });
  menu.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-tag]");
    if (!button) return;
    insert(button.dataset.tag);
    menu.open = false;
  });

  // Start ------------------------------------------------------------------------------------------
  radios.forEach((radio) => radio.addEventListener("change", () => { if (radio.checked) switchTo(radio.value); }));
  form.addEventListener("submit", (event) => {
    // GrapesJS's own buttons (its import dialog) sit inside this form: they must not save it.
    if (event.submitter && event.submitter.closest("[data-visual]")) { event.preventDefault(); return; }
    if (current === "visual") syncVisual();
  });
  // Enter in the visual editor's style fields would submit the campaign form.
  pane("visual").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("input, select")) event.preventDefault();
  });
  root.classList.add("enhanced");
  show(current);
  if (current === "richtext") ensureQuill().then(() => setRichText(source.value));
  if (current === "visual") {
    ensureGrapes().then(() => {
      let project = null;
      try { project = source.value.trim() ? JSON.parse(source.value) : null; } catch (e) { project = null; }
      if (project && project.pages) grapes.loadProjectData(project); else grapes.setComponents(html.value);
      syncVisual();
    });
  }
}());
