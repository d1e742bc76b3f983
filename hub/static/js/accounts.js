/* Accounts: test the connection; write-only credentials (PATCH {"credentials"}); a WeChat
   account's kind (PATCH {"kind"}: subscription 订阅号 / service 服务号, its mass-send allowance). */
(function () {
  "use strict";
  var hub = window.hub;
  document.querySelectorAll("[data-test]").forEach(function (button) {
    button.addEventListener("click", async function () {
      var out = button.closest("td").querySelector(".result");
      button.disabled = true;
      try {
        var result = await hub.api("POST", "/api/v1/accounts/" + button.dataset.test + "/test");
        out.textContent = (result.ok ? hub.t("连接正常") : hub.t("连接失败")) + "：" + result.message;
        out.className = "result " + (result.ok ? "ok" : "error");
      } catch (e) {
        out.textContent = e.status === 404 || e.status === 405 ? hub.t("测试连接功能暂不可用") : hub.t("连接失败") + "：" + e.message;
        out.className = "result error";
      } finally {
        button.disabled = false;
      }
    });
  });
  document.querySelectorAll("select[data-kind]").forEach(function (select) {
    select.addEventListener("change", async function () {
      var out = select.closest("tr").querySelector(".result");
      try {
        await hub.api("PATCH", "/api/v1/accounts/" + select.dataset.kind, { kind: select.value });
        out.textContent = hub.t("已保存公众号类型");
        out.className = "result ok";
      } catch (e) {
        out.textContent = e.message;
        out.className = "result error";
      }
    });
  });
  document.querySelectorAll("form[data-credentials]").forEach(function (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var out = form.closest("td").querySelector(".result");
      var credentials = {};
      form.querySelectorAll("input").forEach(function (input) {
        if (input.value.trim()) credentials[input.name] = input.value.trim();
      });
      try {
        await hub.api("PATCH", "/api/v1/accounts/" + form.dataset.credentials, { credentials: credentials });
        form.reset();
        form.closest("details").open = false;
        out.textContent = hub.t("已更新凭据");
        out.className = "result ok";
      } catch (e) {
        out.textContent = e.message;
        out.className = "result error";
      }
    });
  });
})();
