/* Channel previews from GET /api/v1/posts/{id}/preview: Weibo card with Weibo's own count
   (POST /api/v1/tools/weibo-count, the connector's rule), WeChat article, hall page, problems.
   Everything the post says is put in as text or into a sandboxed iframe (no scripts run). */
(function () {
  "use strict";
  var hub = window.hub;

  function frameDoc(html, publicBase) {
    var local = (html || "").split(publicBase + "/media/").join("/media/");
    // A stylesheet from /static, not an inline <style>: the CSP allows styles from our origin only.
    return '<!doctype html><html><head><meta charset="utf-8">' +
      '<link rel="stylesheet" href="/static/css/preview-frame.css"></head><body>' + local + "</body></html>";
  }

  function escapeHtml(text) {
    return String(text || "").replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  var countSeq = 0;
  hub.countWeibo = async function (text, counter) {
    var seq = ++countSeq;
    try {
      var result = await hub.api("POST", "/api/v1/tools/weibo-count", { text: text });
      if (seq !== countSeq) return;
      counter.textContent = result.count + " / " + result.limit + " " + hub.t("字");
      counter.classList.toggle("over", result.count > result.limit);
      counter.setAttribute("data-count", String(result.count));
      if (result.count > result.limit) counter.textContent += " · " + hub.t("超出") + " " + (result.count - result.limit);
    } catch (e) {
      counter.textContent = "";
    }
  };

  // the pictures the channel really sends (the rendition's, e.g. Weibo's one picture)
  function showPictures(box, urls, publicBase) {
    if (!box) return;
    box.textContent = "";
    (urls || []).forEach(function (url) {
      var local = url.indexOf(publicBase + "/media/") === 0 ? url.slice(publicBase.length) : url;
      if (!/^\/media\//.test(local)) return;
      box.appendChild(hub.el("img", { src: local, alt: hub.t("配图"), class: "weibo-pic" }));
    });
  }

  hub.showPreviews = function (list, publicBase) {
    var byPlatform = {};
    list.forEach(function (p) { byPlatform[p.platform] = p; });
    // pages that show a channel only when the post goes to it (review) mark it data-channel
    document.querySelectorAll("[data-channel]").forEach(function (section) {
      section.hidden = !byPlatform[section.dataset.channel];
    });
    var weiboText = document.getElementById("weibo-text");
    var counter = document.getElementById("weibo-counter");
    if (weiboText) {
      if (byPlatform.weibo) {
        weiboText.textContent = byPlatform.weibo.text;
        weiboText.classList.remove("muted");
        hub.countWeibo(byPlatform.weibo.text, counter);
        showPictures(document.getElementById("weibo-pics"), byPlatform.weibo.images, publicBase);
      } else {
        weiboText.textContent = hub.t("未选择微博账号");
        weiboText.classList.add("muted");
        counter.textContent = "";
        showPictures(document.getElementById("weibo-pics"), [], publicBase);
      }
    }
    var wechatFrame = document.getElementById("wechat-frame");
    if (wechatFrame) {
      var w = byPlatform.wechat;
      document.getElementById("wechat-title").textContent = w ? w.title : hub.t("未选择微信公众号");
      var digest = document.getElementById("wechat-digest");
      if (digest) digest.textContent = w ? w.digest : "";
      wechatFrame.srcdoc = frameDoc(w ? w.html : "", publicBase);
    }
    var hallFrame = document.getElementById("hall-frame");
    if (hallFrame && byPlatform.hall) {
      // the hall page shows the title above the article (the rendition is the article body)
      var heading = "<h1>" + escapeHtml(byPlatform.hall.title) + "</h1>";
      hallFrame.srcdoc = frameDoc(heading + byPlatform.hall.html, publicBase);
    }
    var problems = document.getElementById("problems");
    if (problems) {
      problems.textContent = "";
      var count = 0;
      var seen = {};
      list.forEach(function (p) {
        p.problems.forEach(function (problem) {
          // a proofreading hit in the title or body is the same for every channel: list it once
          var shared = problem.code.indexOf("proofread.") === 0 && problem.field.indexOf("overrides.") !== 0;
          var key = problem.field + ":" + problem.start + ":" + problem.text;
          if (shared && seen[key]) return;
          if (shared) seen[key] = true;
          count += 1;
          var li = hub.el("li", { class: problem.blocking ? "blocking" : "advice" });
          if (problem.code.indexOf("proofread.") === 0) li.setAttribute("data-proofread", problem.text);
          li.appendChild(hub.el("strong", {}, (shared ? hub.t("校对") : hub.platformLabel(p.platform)) + " · " +
            (problem.blocking ? hub.t("阻断提交") : hub.t("提示")) + "："));
          li.appendChild(document.createTextNode(problem.message));
          problems.appendChild(li);
        });
      });
      if (!count) problems.appendChild(hub.el("li", { class: "ok" }, hub.t("没有问题")));
    }
  };

  hub.loadPreviews = async function (postId, publicBase) {
    var list = await hub.api("GET", "/api/v1/posts/" + postId + "/preview");
    hub.showPreviews(list, publicBase);
    return list;
  };
})();
