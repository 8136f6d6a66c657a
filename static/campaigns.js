// Campaign and layout pages: live preview, recipient estimate, subscriber picker, send progress.
// Plain JS, no libraries. Every page works without it; this only makes the live parts live.
(function () {
  "use strict";

  const fmt = new Intl.NumberFormat();
  const t = window.uiText;
  const json = { "Accept": "application/json" };

  function debounce(fn, ms) {
    let timer;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function duration(seconds) {  // the same wording as the page's duration() macro
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return t("%(seconds)s s", { seconds });
    if (seconds < 3600) return t("%(minutes)s min %(seconds)s s", { minutes: Math.floor(seconds / 60), seconds: seconds % 60 });
    return t("%(hours)s h %(minutes)s min", { hours: Math.floor(seconds / 3600), minutes: Math.floor((seconds % 3600) / 60) });
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
        data = { error: { field: "", message: t("The preview is unavailable right now; it retries as you type.") } };
        response = { ok: false };
      }
      if (mine !== latest) return;  // a newer request is on its way
      clearLiveErrors();
      if (data.fields) fieldWarnings(form, out("fields"), data.fields);
      if (response.ok) {
        out("html").srcdoc = data.html;
        if (out("subject")) out("subject").textContent = data.subject;
        if (out("text")) out("text").textContent = data.text;
      } else {
        showError(data.error || { field: "", message: data.detail || t("The preview failed; reload the page.") });
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

  // Personal fields: the attributes the templates read unguarded, and how many recipients lack each.
  let fieldsAsked = "";
  async function fieldWarnings(form, box, found) {
    if (!box) return;
    const params = new URLSearchParams();
    form.querySelectorAll('input[name="list_ids"]:checked').forEach((b) => params.append("list_ids", b.value));
    found.attributes.forEach((a) => params.append("keys", a.key));
    const ask = params.toString();
    let counts = { recipients: 0, missing: {} };
    if (found.attributes.length && params.has("list_ids")) {
      if (ask === fieldsAsked && box.dataset.counts) counts = JSON.parse(box.dataset.counts);
      else {
        try {
          counts = await (await fetch(`${box.dataset.fieldsUrl}?${ask}`, { headers: json })).json();
          fieldsAsked = ask; box.dataset.counts = JSON.stringify(counts);
        } catch (e) { /* the warnings are a help, not a gate */ }
      }
    }
    const items = [];
    for (const a of found.attributes) {
      const missing = counts.missing[a.key];
      if (!missing) continue;
      const li = document.createElement("li");
      const n = document.createElement("strong"); n.textContent = fmt.format(missing);
      const key = document.createElement("code"); key.textContent = `attributes.${a.key}`;
      const fix = document.createElement("code"); fix.className = "suggestion"; fix.textContent = a.suggestion;
      li.append(...t.parts("%(count)s of %(recipients)s recipients have no %(key)s: they see a blank there. Give it a default: %(fix)s", { count: n, recipients: fmt.format(counts.recipients), key, fix }));
      items.push(li);
    }
    for (const name of found.unknown) {
      const li = document.createElement("li");
      const code = document.createElement("code"); code.textContent = name;
      li.append(...t.parts("There is no field %(name)s: it renders as nothing for everyone. Check its spelling.", { name: code }));
      items.push(li);
    }
    box.querySelector("ul").replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  // The campaign page's warnings come without counts (a scan of the audience): fetch them.
  async function countMissing(box) {
    let counts;
    try { counts = await (await fetch(box.dataset.countsUrl, { headers: json })).json(); } catch (e) { return; }
    box.querySelectorAll("[data-missing-key]").forEach((li) => {
      const missing = counts.missing[li.dataset.missingKey];
      if (missing === undefined) return;
      if (!missing) { li.remove(); return; }
      const n = document.createElement("strong"); n.textContent = fmt.format(missing);
      li.querySelector("[data-count]").replaceChildren(...t.parts("%(count)s of %(recipients)s recipients have",
                                                                   { count: n, recipients: fmt.format(counts.recipients) }));
    });
    box.hidden = !box.querySelector("li");
  }

  // Estimated recipients for the checked lists.
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

  // A test send: follow its emails until the mail server answers (sent or failed), every second.
  function followTests(box) {
    let polls = 0;
    async function poll() {
      let data;
      try { data = await (await fetch(box.dataset.testsUrl, { headers: json })).json(); } catch (e) { data = null; }
      let waiting = !data;
      for (const test of (data ? data.tests : [])) {
        const row = box.querySelector(`[data-test="${test.id}"]`);
        if (!row) continue;
        const badge = row.querySelector("[data-test-status]");
        badge.textContent = t(test.status); badge.className = `badge badge-${test.status}`;
        row.querySelector("[data-test-reply]").textContent = test.smtp_code || test.smtp_message
          ? `${test.smtp_code || ""} ${test.smtp_message}` : (test.done ? "" : t("waiting for the mail server…"));
        if (!test.done) waiting = true;
      }
      if (waiting && ++polls < 300) setTimeout(poll, 1000);  // five minutes, then the mail log tells the rest
    }
    if (box.querySelector("[data-test]")) setTimeout(poll, 500);
  }

  // The send's progress, every second; a status change reloads the page (new actions, final totals).
  function sendProgress(box) {
    const field = (name) => box.querySelector(`[data-field="${name}"]`);
    async function poll() {
      try {
        const data = await (await fetch(box.dataset.progressUrl, { headers: json })).json();
        if (data.status !== box.dataset.status) { location.reload(); return; }
        const preparing = data.phase === "preparing";
        field("bar").value = data.percent;
        if (preparing && !data.sent && !data.failed) field("bar").removeAttribute("value");  // indeterminate
        field("percent").textContent = preparing ? t("preparing recipients…") : `${data.percent} %`;
        field("reason").textContent = data.reason || "";
        for (const key of ["sent", "failed", "pending", "skipped"]) field(key).textContent = fmt.format(data[key]);
        field("rate").textContent = data.rate;
        field("eta").textContent = duration(data.eta_seconds);
        field("snapshot").hidden = data.snapshot_done;
        field("recipients").textContent = fmt.format(data.recipients);
      } catch (e) { /* transient: the next poll retries */ }
      setTimeout(poll, 1000);
    }
    setTimeout(poll, 1000);
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
        hint.className = "muted local-time"; hint.textContent = ` · ${t("%(local)s your time (%(zone)s)", { local, zone })}`;
        el.after(hint);
      }
    });
  }

  // The schedule form's timezone starts at the browser's own zone; a time already set (shown in
  // UTC by the server) is moved to that zone so the instant stays the same.
  function browserZone(select) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone || zone === select.value || !Array.from(select.options).some((o) => o.value === zone)) return;
    const input = select.form && select.form.querySelector("input[type=datetime-local]");
    if (input && input.value && select.value === "UTC") {
      const when = new Date(input.value + "Z");
      const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit" }).formatToParts(when).map((p) => [p.type, p.value]));
      input.value = `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
    }
    select.value = zone;
  }

  document.querySelectorAll("select[data-browser-zone]").forEach(browserZone);
  document.querySelectorAll("form[data-live-preview]").forEach(livePreview);
  document.querySelectorAll("form[data-estimate-url]").forEach(recipientEstimate);
  document.querySelectorAll("form[data-subscribers-url]").forEach(subscriberPicker);
  document.querySelectorAll("[data-progress-url]").forEach(sendProgress);
  document.querySelectorAll("[data-tests-url]").forEach(followTests);
  document.querySelectorAll("[data-counts-url]").forEach(countMissing);
  localTimes();
})();
