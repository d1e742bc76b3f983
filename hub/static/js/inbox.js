// Inbox keyboard shortcuts: j/k move, a selects, r opens the case at its reply box.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.case"));
  var at = -1;
  function focus(i) {
    if (!rows.length) return;
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, n) { r.classList.toggle("current", n === at); });
    rows[at].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (/INPUT|TEXTAREA|SELECT/.test(tag) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j") focus(at + 1);
    else if (e.key === "k") focus(at - 1);
    else if (e.key === "a" && at >= 0) {
      var box = rows[at].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    } else if (e.key === "r" && at >= 0) {
      window.location.href = rows[at].getAttribute("data-href") + "#reply-form";
    } else return;
    e.preventDefault();
  });
})();
