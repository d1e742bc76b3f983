/* Delivery board: rows follow GET /api/v1/posts/{id}/events (SSE, event "deliveries");
   retry / cancel / mark-as-published go through the JSON API. */
(function () {
  "use strict";
  var hub = window.hub;
  var cfg = hub.config("board-config");
  var rows = document.getElementById("board-rows");
  var message = document.getElementById("board-message");
  var live = document.getElementById("live-state");
  var STATUS = { queued: "待发送", sending: "发送中", pending: "等待平台结果", published: "已发布",
    unconfirmed: "结果未确认", failed: "失败", parked: "已暂停", cancelled: "已取消", withdrawn: "已撤回" };
  var POST_STATUS = { draft: "草稿", in_review: "待审核", cosigning: "会签中", approved: "已批准",
    scheduled: "已定时", publishing: "发布中", published: "已发布", partly_failed: "部分失败",
    failed: "失败", rejected: "已驳回", missed: "错过发布时间", withdrawn: "已撤回" };
  var ACTIONS = {
    retry: ["failed", "parked", "cancelled", "unconfirmed"],
    cancel: ["queued", "parked", "failed"],
    "mark-published": ["unconfirmed", "failed", "parked", "pending"]
  };
  var FINISHED = ["published", "failed", "cancelled", "withdrawn"];
  var WORDS = { retry: "重试", cancel: "取消", "mark-published": "标记为已发布" };

  function badge(status) { return hub.el("span", { class: "badge d-" + status }, hub.t(STATUS[status] || status)); }

  async function act(delivery, action, remoteUrl) {
    try {
      var body = action === "mark-published" ? { remote_url: remoteUrl } : undefined;
      await hub.api("POST", "/api/v1/deliveries/" + delivery.id + "/" + action, body);
      hub.say(message, "");
      connect();
    } catch (e) {
      hub.say(message, e.message, "error");
    }
  }

  function actionsFor(delivery) {
    var cell = hub.el("td", { class: "acts" });
    Object.keys(ACTIONS).forEach(function (action) {
      if (ACTIONS[action].indexOf(delivery.status) === -1) return;
      // an unconfirmed copy is retried by hand only once the engine has stopped looking for it
      if (action === "retry" && delivery.status === "unconfirmed" && delivery.next_attempt_at) return;
      if (action === "mark-published") {
        var details = hub.el("details", { class: "inline" });
        details.appendChild(hub.el("summary", {}, hub.t(WORDS[action])));
        var formEl = hub.el("form", {});
        var input = hub.el("input", { type: "url", required: "required", placeholder: "https://", "aria-label": hub.t("请输入该稿件在平台上的地址") });
        formEl.appendChild(input);
        formEl.appendChild(hub.el("button", { type: "submit", class: "small" }, hub.t("确定")));
        formEl.addEventListener("submit", function (event) { event.preventDefault(); act(delivery, action, input.value.trim()); });
        details.appendChild(formEl);
        cell.appendChild(details);
        return;
      }
      var button = hub.el("button", { type: "button", class: "small" + (action === "cancel" ? " danger" : "") }, hub.t(WORDS[action]));
      button.addEventListener("click", function () { act(delivery, action); });
      cell.appendChild(button);
    });
    return cell;
  }

  function render(data) {
    var statusEl = document.getElementById("post-status");
    statusEl.textContent = "";
    statusEl.appendChild(hub.el("span", { class: "badge s-" + data.post_status }, hub.t(POST_STATUS[data.post_status] || data.post_status)));
    rows.textContent = "";
    var finished = 0;
    data.deliveries.forEach(function (d) {
      if (FINISHED.indexOf(d.status) !== -1) finished += 1;
      var tr = hub.el("tr", { "data-delivery": String(d.id), "data-status": d.status });
      tr.appendChild(hub.el("td", {}, d.account_name));
      var platform = hub.platformLabel(d.platform);
      tr.appendChild(hub.el("td", {}, d.mode === "push" ? platform + " · " + hub.t("群发") : platform));
      var st = hub.el("td", { class: "st" }); st.appendChild(badge(d.status)); tr.appendChild(st);
      tr.appendChild(hub.el("td", {}, String(d.attempts)));
      var detail = hub.el("td", { class: "detail" });
      if (d.remote_url && /^https?:\/\//.test(d.remote_url)) {
        detail.appendChild(hub.el("a", { href: d.remote_url, rel: "noopener noreferrer", target: "_blank" }, hub.t("查看")));
      }
      if (d.error) detail.appendChild(hub.el("span", { class: "err" }, " " + d.error));
      tr.appendChild(detail);
      tr.appendChild(hub.el("td", { class: "muted" }, hub.stamp(d.updated_at, cfg.timezone)));
      if (cfg.canManage) tr.appendChild(actionsFor(d));
      rows.appendChild(tr);
    });
    if (!data.deliveries.length) {
      // copies are made when the post is approved: say so rather than show an empty table
      var empty = hub.el("tr", {});
      empty.appendChild(hub.el("td", { colspan: "7", class: "muted" }, hub.t("稿件批准后才会生成投递。")));
      rows.appendChild(empty);
    }
    var total = data.deliveries.length;
    var bar = document.getElementById("progress-bar");
    var progress = document.getElementById("progress");
    progress.setAttribute("aria-valuemax", String(total));
    progress.setAttribute("aria-valuenow", String(finished));
    bar.style.width = total ? (100 * finished / total) + "%" : "0";
    progress.classList.toggle("running", total > 0 && finished < total);
    document.getElementById("progress-text").textContent = total ? finished + " / " + total : "";
  }

  var source = null;
  function connect() {
    if (source) source.close();
    source = new EventSource("/api/v1/posts/" + cfg.postId + "/events");
    source.addEventListener("open", function () { live.textContent = hub.t("实时更新中"); });
    source.addEventListener("deliveries", function (event) { render(JSON.parse(event.data)); });
    source.addEventListener("done", function () {
      live.textContent = hub.t("全部完成");
      source.close();
    });
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED) live.textContent = hub.t("实时连接已断开，正在重连…");
    });
  }
  // the server-rendered rows get their action buttons from the first event
  connect();
})();
