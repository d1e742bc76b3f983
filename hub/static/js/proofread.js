/* Proofreading (错敏字校对) on the compose page: as the editor types, the title and body go to
   POST /api/v1/proofread/check; hits are marked inline (a copy of the text with <mark>s, built
   with text nodes only) and listed with their message and suggestion; 「替换」 puts the
   suggestion into the field at the hit's place (when the text there is still the hit). */
(function () {
  "use strict";
  var hub = window.hub;

  function marked(text, hits) {
    var box = document.createDocumentFragment();
    var at = 0;
    hits.slice().sort(function (a, b) { return a.start - b.start; }).forEach(function (h) {
      if (h.start < at) return;
      box.appendChild(document.createTextNode(text.slice(at, h.start)));
      var mark = hub.el("mark", { class: "proof-" + h.severity, title: h.description }, text.slice(h.start, h.end));
      box.appendChild(mark);
      at = h.end;
    });
    box.appendChild(document.createTextNode(text.slice(at)));
    return box;
  }

  function replace(field, hit) {
    var value = field.value;
    if (value.slice(hit.start, hit.end) !== hit.text) return false;
    field.setRangeText(hit.suggestion, hit.start, hit.end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    return true;
  }

  var seq = 0;
  hub.proofread = async function (opts) {
    var mine = ++seq;
    var fields = opts.fields;  // [{name, label, el}]
    var results = await Promise.all(fields.map(function (f) {
      if (!f.el.value.trim()) return Promise.resolve([]);
      return hub.api("POST", "/api/v1/proofread/check", { text: f.el.value, org_code: opts.orgCode || null });
    }));
    if (mine !== seq) return null;
    var marks = opts.marks, list = opts.list, total = 0, blocking = 0;
    marks.textContent = "";
    list.textContent = "";
    fields.forEach(function (f, i) {
      var hits = results[i];
      total += hits.length;
      if (!hits.length) return;
      var para = hub.el("p", { class: "proof-text", "data-field": f.name });
      para.appendChild(hub.el("strong", {}, f.label + "："));
      para.appendChild(marked(f.el.value, hits));
      marks.appendChild(para);
      hits.forEach(function (h) {
        if (h.severity === "block") blocking += 1;
        var li = hub.el("li", { class: "proof-item " + (h.severity === "block" ? "blocking" : "advice") });
        li.appendChild(hub.el("strong", {}, hub.t(h.category_label) + " · " + (h.severity === "block" ? hub.t("必须修改") : hub.t("提示")) + "："));
        li.appendChild(document.createTextNode("「" + h.text + "」" + h.message));
        if (h.suggestion) {
          li.appendChild(document.createTextNode(" → 「" + h.suggestion + "」 "));
          var button = hub.el("button", { type: "button", class: "replace" }, hub.t("替换"));
          button.addEventListener("click", function () {
            if (replace(f.el, h) && opts.onReplace) opts.onReplace();
          });
          li.appendChild(button);
        }
        list.appendChild(li);
      });
    });
    if (!total) list.appendChild(hub.el("li", { class: "ok" }, hub.t("未发现错敏字")));
    if (opts.summary) {
      opts.summary.textContent = total ? hub.t("%(n)s 处", { n: total }) + (blocking ? " · " + hub.t("%(n)s 处必须修改", { n: blocking }) : "") : "";
    }
    return results;
  };
})();
