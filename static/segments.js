// The segment rule builder: edits the rules JSON in the form's text area, shows a live count and
// a preview (debounced POSTs to the count endpoint). Without JavaScript the text area still works.
(function () {
  "use strict";
  const MAX_DEPTH = 5;
  const fmt = new Intl.NumberFormat();
  const t = window.uiText;
  const TYPES = {
    attribute: t("Attribute"), email_domain: t("Email domain"), status: t("Subscriber status"), list: t("List membership"),
    signup_date: t("Signup date"), engagement: t("Engagement"), bounce: t("Bounces"),
  };
  const ATTRIBUTE_OPS = {
    equals: t("is"), not_equals: t("is not"), contains: t("contains"), not_contains: t("does not contain"),
    starts_with: t("starts with"), gt: t("> (number)"), gte: t("≥ (number)"), lt: t("< (number)"), lte: t("≤ (number)"),
    before: t("before (date)"), after: t("after (date)"), is_set: t("is set"), is_not_set: t("is not set"),
  };
  const STATUSES = ["confirmed", "unconfirmed", "unsubscribed", "bounced", "complained"];
  const DEFAULTS = {
    attribute: () => ({ type: "attribute", key: "", op: "equals", value: "" }),
    email_domain: () => ({ type: "email_domain", op: "equals", value: "" }),
    status: () => ({ type: "status", op: "equals", value: "confirmed" }),
    list: (o) => ({ type: "list", op: "member", list_id: o.lists.length ? o.lists[0].id : 0, status: "confirmed" }),
    signup_date: () => ({ type: "signup_date", op: "within_last_days", days: 30 }),
    engagement: () => ({ type: "engagement", op: "opened", campaign_id: null, days: 30 }),
    bounce: () => ({ type: "bounce", op: "has", bounce_type: "hard", days: null }),
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function select(label, choices, value, onChange) {
    const box = el("select", { "aria-label": label });
    Object.entries(choices).forEach(([k, v]) => box.append(el("option", { value: k, text: v })));
    box.value = String(value);
    box.addEventListener("change", () => onChange(box.value));
    return box;
  }

  function input(label, type, value, onChange, extra) {
    const box = el("input", { type, "aria-label": label, ...(extra || {}) });
    box.value = value === null || value === undefined ? "" : String(value);
    box.addEventListener("input", () => onChange(box.value));
    return box;
  }

  function optionalNumber(text) { return text.trim() === "" ? null : Number(text); }

  function conditionFields(node, options, changed, rerender) {
    const set = (key, parse) => (v) => { node[key] = parse ? parse(v) : v; changed(); };
    const fields = [];
    switch (node.type) {
      case "attribute": {
        fields.push(input(t("Attribute name"), "text", node.key, set("key"), { placeholder: "plan" }));
        fields.push(select(t("Comparison"), ATTRIBUTE_OPS, node.op, (v) => {
          node.op = v;
          if (v === "is_set" || v === "is_not_set") delete node.value;
          else if (["gt", "gte", "lt", "lte"].includes(v)) node.value = Number(node.value) || 0;
          else if (v === "before" || v === "after") node.value = new Date().toISOString().slice(0, 10);
          else node.value = typeof node.value === "string" ? node.value : "";
          rerender();
        }));
        if (node.op === "is_set" || node.op === "is_not_set") break;
        if (["gt", "gte", "lt", "lte"].includes(node.op)) fields.push(input(t("Number"), "number", node.value, set("value", Number), { step: "any" }));
        else if (node.op === "before" || node.op === "after") fields.push(input(t("Date"), "date", node.value, set("value")));
        else fields.push(input(t("Value"), "text", node.value, set("value"), { placeholder: "pro" }));
        break;
      }
      case "email_domain":
        fields.push(select(t("Comparison"), { equals: t("is"), not_equals: t("is not") }, node.op, set("op")));
        fields.push(input(t("Domain"), "text", node.value, set("value"), { placeholder: "example.com" }));
        break;
      case "status":
        fields.push(select(t("Comparison"), { equals: t("is"), not_equals: t("is not") }, node.op, set("op")));
        fields.push(select(t("Status"), Object.fromEntries(STATUSES.map((s) => [s, t(s)])), node.value, set("value")));
        break;
      case "list": {
        const lists = Object.fromEntries(options.lists.map((l) => [l.id, l.name]));
        if (!(node.list_id in lists)) lists[node.list_id] = t("List #%(id)s", { id: node.list_id });
        fields.push(select(t("Membership"), { member: t("is on"), not_member: t("is not on") }, node.op, set("op")));
        fields.push(select(t("List"), lists, node.list_id, set("list_id", Number)));
        fields.push(select(t("Membership status"), { confirmed: t("confirmed"), unconfirmed: t("unconfirmed"),
          unsubscribed: t("unsubscribed"), any: t("in any status") }, node.status, set("status")));
        break;
      }
      case "signup_date":
        fields.push(select(t("When"), { within_last_days: t("in the last … days"), before: t("before"), after: t("after") }, node.op, (v) => {
          node.op = v;
          if (v === "within_last_days") { delete node.value; node.days = 30; } else { delete node.days; node.value = new Date().toISOString().slice(0, 10); }
          rerender();
        }));
        if (node.op === "within_last_days") fields.push(input(t("Days"), "number", node.days, set("days", Number), { min: 1 }));
        else fields.push(input(t("Date"), "date", node.value, set("value")));
        break;
      case "engagement": {
        fields.push(select(t("Engagement"), { opened: t("opened"), clicked: t("clicked"), not_opened: t("did not open"),
          not_clicked: t("did not click"), never_opened: t("never opened anything") }, node.op, (v) => {
          node.op = v;
          if (v === "never_opened") { delete node.campaign_id; delete node.days; } else { node.campaign_id ??= null; node.days ??= null; }
          rerender();
        }));
        if (node.op === "never_opened") break;
        const campaigns = { "": t("any campaign") };
        options.campaigns.forEach((c) => { campaigns[c.id] = c.tracking === "individual" ? c.name : t("%(name)s (not tracked per subscriber)", { name: c.name }); });
        fields.push(select(t("Campaign"), campaigns, node.campaign_id ?? "", set("campaign_id", (v) => (v === "" ? null : Number(v)))));
        fields.push(input(t("In the last … days (blank: ever)"), "number", node.days, set("days", optionalNumber), { min: 1, placeholder: t("ever") }));
        break;
      }
      case "bounce":
        fields.push(select(t("Bounces"), { has: t("has"), has_not: t("has no") }, node.op, set("op")));
        fields.push(select(t("Kind"), { hard: t("hard bounce"), soft: t("soft bounce"), any: t("bounce (hard or soft)"),
          complaint: t("complaint") }, node.bounce_type, set("bounce_type")));
        fields.push(input(t("In the last … days (blank: ever)"), "number", node.days, set("days", optionalNumber), { min: 1, placeholder: t("ever") }));
        break;
      default:
        fields.push(el("span", { class: "muted", text: t("Edit this condition in the JSON below.") }));
    }
    return fields;
  }

  function renderGroup(group, depth, options, changed, onRemove) {
    const box = el("fieldset", { class: "rule-group" });
    const rerender = () => { box.replaceWith(renderGroup(group, depth, options, changed, onRemove)); changed(); };
    const head = el("div", { class: "rule-head" }, [
      el("span", { text: depth === 1 ? t("Subscribers matching") : t("Matching") }),
      select(t("Match"), { all: t("all"), any: t("any") }, group.match, (v) => { group.match = v; changed(); }),
      el("span", { text: t("of:") }),
    ]);
    if (onRemove) {
      const remove = el("button", { type: "button", class: "outline secondary small", text: t("Remove group") });
      remove.addEventListener("click", onRemove);
      head.append(remove);
    }
    box.append(head);
    const rows = el("ul", { class: "rule-rows" });
    group.rules.forEach((node, index) => {
      const removeAt = () => { group.rules.splice(index, 1); rerender(); };
      if ("match" in node && !("type" in node)) {
        rows.append(el("li", {}, [renderGroup(node, depth + 1, options, changed, removeAt)]));
        return;
      }
      const row = el("li", { class: "rule-row" });
      const type = select(t("Condition"), TYPES, node.type, (v) => { group.rules[index] = DEFAULTS[v](options); rerender(); });
      const remove = el("button", { type: "button", class: "outline secondary small", "aria-label": t("Remove condition"), text: "×" });
      remove.addEventListener("click", removeAt);
      row.append(type, ...conditionFields(node, options, changed, rerender), remove);
      rows.append(row);
    });
    if (!group.rules.length) rows.append(el("li", { class: "muted small-text", text: group.match === "all" ? t("No conditions: everyone matches.") : t("No conditions: nobody matches.") }));
    box.append(rows);
    const add = el("button", { type: "button", class: "outline small", text: t("+ Condition") });
    add.addEventListener("click", () => { group.rules.push(DEFAULTS.attribute(options)); rerender(); });
    const actions = el("div", { class: "rule-actions" }, [add]);
    if (depth < MAX_DEPTH) {
      const sub = el("button", { type: "button", class: "outline secondary small", text: t("+ Group") });
      sub.addEventListener("click", () => { group.rules.push({ match: "any", rules: [] }); rerender(); });
      actions.append(sub);
    }
    box.append(actions);
    return box;
  }

  function start(form) {
    const area = form.querySelector("textarea[name=rules]");
    const builder = form.querySelector("[data-builder]");
    const jsonError = form.querySelector("[data-json-error]");
    const count = form.querySelector("[data-count]");
    const countError = form.querySelector("[data-count-error]");
    const note = form.querySelector("[data-count-note]");
    const table = form.querySelector("[data-preview]");
    const token = form.querySelector('input[name="csrf_token"]').value;
    const options = JSON.parse(document.getElementById("segment-options").textContent);
    let state = null;
    let timer = null;
    let sequence = 0;

    function post(body) {
      return fetch(form.dataset.countUrl, {
        method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token },
      }).then((response) => response.json());
    }

    // An estimate ("about N ± M") is replaced by the exact figure when it arrives.
    async function exactly(rules, mine) {
      try {
        const data = await post({ rules, exact: true });
        if (mine !== sequence || data.error) return;
        count.textContent = fmt.format(data.count);
      } catch (e) {
        if (mine === sequence) count.textContent += " ?";
      } finally {
        if (mine === sequence) note.hidden = true;
      }
    }

    async function refresh() {
      const mine = ++sequence;
      count.setAttribute("aria-busy", "true");
      note.hidden = true;
      try {
        const data = await post({ rules: state });
        if (mine !== sequence) return;  // a newer edit is on its way
        countError.hidden = !data.error;
        if (data.error) { countError.textContent = `${data.error.field}: ${data.error.message}`; count.textContent = "—"; table.hidden = true; return; }
        if (data.exact) count.textContent = fmt.format(data.count);
        else {
          count.textContent = t("about %(count)s ± %(margin)s", { count: fmt.format(data.count), margin: fmt.format(data.margin) });
          note.hidden = false;
          exactly(state, mine);
        }
        const body = table.querySelector("tbody");
        body.replaceChildren(...data.preview.map((p) => el("tr", {}, [
          el("td", { class: "break" }, [el("a", { href: p.url, text: p.email })]),
          el("td", { class: "hide-sm break", text: p.name }), el("td", { text: t(p.status) }),
        ])));
        table.hidden = !data.preview.length;
      } catch (e) {
        if (mine === sequence) count.textContent = "—";
      } finally {
        if (mine === sequence) count.removeAttribute("aria-busy");
      }
    }

    function schedule() { clearTimeout(timer); timer = setTimeout(refresh, 350); }
    function changed() { area.value = JSON.stringify(state, null, 2); jsonError.hidden = true; schedule(); }
    function draw() { builder.replaceChildren(renderGroup(state, 1, options, changed, null)); }

    function load() {
      try {
        const parsed = JSON.parse(area.value);
        if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.rules)) throw new Error(t("A group with match and rules."));
        state = parsed;
        jsonError.hidden = true;
        draw();
        schedule();
      } catch (e) {
        jsonError.textContent = t("Not valid JSON: %(error)s", { error: e.message });
        jsonError.hidden = false;
      }
    }

    area.addEventListener("input", load);
    builder.hidden = false;
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("segment-form");
    if (form) start(form);
  });
})();
