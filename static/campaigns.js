// Campaign and layout pages: live preview, recipient estimate, subscriber picker, send progress.
// Plain JS, no libraries. Every page works without it; this only makes the live parts live.
(function () {
  "use strict";

  const fmt = new Intl.NumberFormat();
  const json = { "Accept": "application/json" };

  function debounce(fn, ms) {
    let timer;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function duration(seconds) {  // the same wording as the page's duration() macro
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }

  // Live preview: POST the whole form (CSRF token in the header) and show the JSON answer.
  function livePreview(form) {
    const out = (name) => form.querySelector(`[data-preview="${name}"]`);
    const token = form.querySelector('input[name="csrf_token"]').value;
    let latest = 0;

    function clearLiveErrors() {
      form.querySelectorAll("[data-live-error]").forEach((el) => el.remove());
      form.querySelectorAll("[data-live-invalid]").forEach((el) => {
        el.removeAttribute("aria-invalid"); el.removeAttribute("data-live-invalid");
      });
      out("error").hidden = true;
    }

    function showError(error) {
      out("error").textContent = error.message;
      out("error").hidden = false;
      const input = error.field && form.querySelector(`[name="${error.field}"]`);
      if (!input) return;
      const holder = input.closest("fieldset, label") || input.parentNode;
      const shown = [...holder.querySelectorAll(".field-error")].some((el) => el.textContent === error.message);
      if (!input.hasAttribute("aria-invalid")) { input.setAttribute("aria-invalid", "true"); input.dataset.liveInvalid = ""; }
      if (shown) return;
      const small = document.createElement("small");
      small.className = "field-error"; small.dataset.liveError = ""; small.textContent = error.message;
      holder.appendChild(small);
    }

    async function refresh() {
      const mine = ++latest;
      let response, data;
      try {
        response = await fetch(form.dataset.livePreview, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { ...json, "X-CSRFToken": token },
        });
        data = await response.json();
      } catch (e) {
        data = { error: { field: "", message: "The preview is unavailable right now; it retries as you type." } };
        response = { ok: false };
      }
      if (mine !== latest) return;  // a newer request is on its way
      clearLiveErrors();
      if (response.ok) {
        out("html").srcdoc = data.html;
        if (out("subject")) out("subject").textContent = data.subject;
        if (out("text")) out("text").textContent = data.text;
      } else {
        showError(data.error || { field: "", message: data.detail || "The preview failed; reload the page." });
      }
    }

    const later = debounce(refresh, 400);
    form.addEventListener("input", (event) => { if (event.target.name !== "preview_as") later(); });
    form.addEventListener("change", (event) => {
      if (event.target.name === "preview_as") refresh();
      else if (event.target.matches("select, input[type=checkbox]")) later();
    });
    form.querySelectorAll("[data-view]").forEach((button) => button.addEventListener("click", () => {
      const view = button.dataset.view;
      out("html").hidden = view !== "html";
      out("text").hidden = view !== "text";
      form.querySelectorAll("[data-view]").forEach((b) => {
        b.setAttribute("aria-pressed", String(b === button)); b.classList.toggle("outline", b !== button);
      });
    }));
    if (!out("html").getAttribute("srcdoc")) refresh();
  }

  // Estimated recipients for the checked lists and segments.
  function recipientEstimate(form) {
    const out = form.querySelector("[data-estimate]");
    if (!out) return;
    async function update() {
      const params = new URLSearchParams();
      form.querySelectorAll('input[name="list_ids"]:checked, input[name="segment_ids"]:checked')
        .forEach((box) => params.append(box.name, box.value));
      try {
        const data = await (await fetch(`${form.dataset.estimateUrl}?${params}`, { headers: json })).json();
        out.textContent = data.error ? "—" : fmt.format(data.recipients);
      } catch (e) { out.textContent = "—"; }
    }
    form.addEventListener("change", (event) => {
      if (event.target.name === "list_ids" || event.target.name === "segment_ids") update();
    });
    update();
  }

  // Suggest subscribers' addresses as the user types into a "preview as" field.
  function subscriberPicker(form) {
    const input = form.querySelector('input[name="preview_as"]');
    const options = input && document.getElementById(input.getAttribute("list"));
    if (!options) return;
    input.addEventListener("input", debounce(async () => {
      try {
        const url = `${form.dataset.subscribersUrl}?q=${encodeURIComponent(input.value.trim())}`;
        const data = await (await fetch(url, { headers: json })).json();
        options.replaceChildren(...data.subscribers.map((s) => {
          const option = document.createElement("option");
          option.value = s.email; option.label = s.name || s.email;
          return option;
        }));
      } catch (e) { /* suggestions are optional */ }
    }, 250));
  }

  // The send's progress, every 2 s; a status change reloads the page (new actions, final totals).
  function sendProgress(box) {
    const field = (name) => box.querySelector(`[data-field="${name}"]`);
    async function poll() {
      try {
        const data = await (await fetch(box.dataset.progressUrl, { headers: json })).json();
        if (data.status !== box.dataset.status) { location.reload(); return; }
        field("bar").value = data.percent;
        field("percent").textContent = `${data.percent} %`;
        field("reason").textContent = data.reason || "";
        for (const key of ["sent", "failed", "pending", "skipped"]) field(key).textContent = fmt.format(data[key]);
        field("rate").textContent = data.rate;
        field("eta").textContent = duration(data.eta_seconds);
        field("snapshot").hidden = data.snapshot_done;
      } catch (e) { /* transient: the next poll retries */ }
      setTimeout(poll, 2000);
    }
    setTimeout(poll, 2000);
  }

  // Times are shown in UTC; the reader's own time appears on hover, or beside it where asked.
  function localTimes() {
    document.querySelectorAll("time[data-local]").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const local = when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      el.title = `${local} (${zone})`;
      if (el.dataset.local === "show" && zone !== "UTC") {
        const hint = document.createElement("small");
        hint.className = "muted local-time"; hint.textContent = ` · ${local} your time (${zone})`;
        el.after(hint);
      }
    });
  }

  document.querySelectorAll("form[data-live-preview]").forEach(livePreview);
  document.querySelectorAll("form[data-estimate-url]").forEach(recipientEstimate);
  document.querySelectorAll("form[data-subscribers-url]").forEach(subscriberPicker);
  document.querySelectorAll("[data-progress-url]").forEach(sendProgress);
  localTimes();
})();
