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
        // the message may already begin with the verdict ("连接正常：读到…"): say it once
        var verdict = result.ok ? hub.t("连接正常") : hub.t("连接失败");
        var said = result.message.indexOf("连接正常") === 0 || result.message.indexOf(verdict) === 0;
        out.textContent = said ? result.message : verdict + "：" + result.message;
        out.className = "result " + (result.ok ? "ok" : "error");
      } catch (e) {
        out.textContent = e.status === 404 || e.status === 405 ? hub.t("测试连接功能暂不可用") : hub.t("连接失败") + "：" + e.message;
        out.className = "result error";
      } finally {
        button.disabled = false;
      }
    });
  });
  var add = document.querySelector("form[data-new-account]");
  if (add) {
    var platformSelect = add.querySelector("select[name=platform]");
    var showFields = function () {
      add.querySelectorAll("fieldset[data-platform-fields]").forEach(function (set) {
        var on = set.dataset.platformFields === platformSelect.value;
        set.hidden = !on;
        set.disabled = !on;
      });
    };
    platformSelect.addEventListener("change", showFields);
    showFields();
    add.addEventListener("submit", async function (event) {
      event.preventDefault();
      var out = add.querySelector(".result");
      var body = {
        org_code: add.elements.org_code.value,
        platform: platformSelect.value,
        name: add.elements.name.value.trim(),
        handle: add.elements.handle.value.trim(),
        interaction_channel: add.elements.interaction_channel.checked,
      };
      if (add.elements.opened_on.value) body.opened_on = add.elements.opened_on.value;
      var credentials = {};
      var fields = add.querySelector("fieldset[data-platform-fields='" + platformSelect.value + "']");
      fields.querySelectorAll("input").forEach(function (input) {
        if (input.value.trim()) credentials[input.name] = input.value.trim();
      });
      if (Object.keys(credentials).length) body.credentials = credentials;
      try {
        var made = await hub.api("POST", "/api/v1/accounts", body);
        window.location.assign("/accounts?added=" + made.id + "#account-" + made.id);
      } catch (e) {
        out.textContent = e.message;
        out.className = "result error";
      }
    });
  }
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
  hub.wired(document);
})();
