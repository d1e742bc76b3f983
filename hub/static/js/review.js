/* Review: previews, then approve / reject with a reason / co-sign through the JSON API. */
(function () {
  "use strict";
  var hub = window.hub;
  var cfg = hub.config("review-config");
  var message = document.getElementById("review-message");
  var done = { approve: "已批准", reject: "已驳回", cosign: "已会签" };
  document.querySelectorAll("[data-act]").forEach(function (button) {
    button.addEventListener("click", async function () {
      var act = button.dataset.act;
      var comment = document.getElementById("comment").value.trim();
      if (act === "reject" && !comment) {
        hub.say(message, hub.t("请填写驳回理由"), "error");
        document.getElementById("comment").focus();
        return;
      }
      var body = act === "reject" ? { reason: comment } : { comment: comment };
      if (act === "approve") {
        // proofreading warnings the reviewer lets through, each with its reason
        body.acknowledge = Array.from(document.querySelectorAll("[data-ack-text]")).map(function (input) {
          return { text: input.dataset.ackText, reason: input.value.trim() };
        });
      }
      document.querySelectorAll("[data-act]").forEach(function (b) { b.disabled = true; });
      try {
        await hub.api("POST", "/api/v1/posts/" + cfg.postId + "/" + act, body);
        hub.say(message, hub.t(done[act]), "ok");
        window.location.assign(act === "approve" ? "/posts/" + cfg.postId + "/board" : "/review");
      } catch (e) {
        hub.say(message, e.message, "error");
        document.querySelectorAll("[data-act]").forEach(function (b) { b.disabled = false; });
      }
    });
  });
  hub.wired(document);
  hub.loadPreviews(cfg.postId, cfg.publicBase).catch(function () {});
})();
