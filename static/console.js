// Workspace console: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // While a modal dialog is open the page behind it is hidden from assistive technology (and
  // from role queries), as the dialog is all there is to act on.
  // When it closes, focus goes back to what opened it (the element focused before, or the
  // one its data-return-focus names), not to the page's body.
  function showModal(dialog, opener) {
    var shell = document.querySelector(".shell");
    if (shell) shell.setAttribute("aria-hidden", "true");
    var back = opener || document.activeElement;
    if (!back || back === document.body) back = document.querySelector(dialog.getAttribute("data-return-focus") || null);
    dialog.returnFocusTo = back;
    dialog.showModal();
  }

  document.addEventListener("close", function (event) {
    var shell = document.querySelector(".shell");
    if (shell && !document.querySelector("dialog[open]")) shell.removeAttribute("aria-hidden");
    var dialog = event.target;
    if (dialog.open) return;  // the close() that openModal() does before showModal()
    if (dialog.id === "confirm-dialog") confirmed = null;
    var back = dialog.returnFocusTo;
    dialog.returnFocusTo = null;
    if (back && back.isConnected) back.focus();
  }, true);

  // The confirm dialog stands in for the form whose button opened it. For a form that posts
  // (Revoke selected, Revoke all tokens, ...) confirming submits that very form, so whatever it
  // carries goes too, the ticked rows' ids included (they belong to it through form="..."). For a
  // link or a form that fetches a confirmation page, the dialog posts to that page's address.
  var confirmed = null;

  function isPostForm(form) {
    return form && (form.getAttribute("method") || "").toLowerCase() === "post";
  }

  // Focus starts on the first field in error, if the form came back with errors.
  var FIRST_FIELD = "[aria-invalid=true], [autofocus], input:not([type=hidden]), select, textarea, button";

  function openModal(dialog, opener) {
    if (!dialog) return;
    if (dialog.open) dialog.close();
    showModal(dialog, opener);
    var first = dialog.querySelector("[aria-invalid=true]") || dialog.querySelector(FIRST_FIELD);
    if (first) first.focus();
  }

  document.addEventListener("click", function (event) {
    var navButton = event.target.closest("[data-nav-toggle]");
    if (navButton) {
      toggleNav(navButton, navButton.getAttribute("aria-expanded") !== "true");
      return;
    }

    var opener = event.target.closest("[data-dialog-open]");
    if (opener) {
      event.preventDefault();
      openModal(document.getElementById(opener.getAttribute("data-dialog-open")), opener);
      return;
    }

    var rotate = event.target.closest("[data-rotate]");
    if (rotate) {
      var rotateDialog = document.getElementById("rotate-dialog");
      if (!rotateDialog) return;
      event.preventDefault();
      rotateDialog.querySelector("form[method=post]").setAttribute("action", rotate.form.getAttribute("action"));
      rotateDialog.querySelector("[data-rotate-title]").textContent = "Rotate “" + rotate.getAttribute("data-rotate") + "”";
      showModal(rotateDialog, rotate);
      var checked = rotateDialog.querySelector("input[type=radio]:checked");
      if (checked) checked.focus();
      return;
    }

    var confirmLink = event.target.closest("[data-confirm]");
    if (confirmLink) {
      var dialog = document.getElementById("confirm-dialog");
      if (!dialog) return;
      event.preventDefault();
      dialog.querySelector("[data-confirm-title]").textContent = confirmLink.getAttribute("data-confirm");
      dialog.querySelector("[data-confirm-body]").textContent = confirmLink.getAttribute("data-confirm-body") || "";
      var submit = dialog.querySelector("[data-confirm-submit]");
      submit.textContent = confirmLink.getAttribute("data-confirm-action") || "Confirm";
      var url = confirmLink.getAttribute("href") || confirmLink.form.getAttribute("action");
      dialog.querySelector("form[method=post]").setAttribute("action", url);
      showModal(dialog, confirmLink);
      confirmed = !confirmLink.hasAttribute("href") && isPostForm(confirmLink.form) ? confirmLink : null;
      dialog.querySelector("[data-confirm-cancel]").focus();
      return;
    }

    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy"));
      var status = document.getElementById(copy.getAttribute("data-copy-status"));
      var isInput = source && source.tagName === "INPUT";
      var text = source ? (isInput ? source.value : source.textContent).trim() : "";
      var done = function () {
        if (status) status.textContent = "Copied to the clipboard.";
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = "Copy"; }, 2000);
      };
      var fallback = function () {
        if (isInput) { source.select(); } else {
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
        }
        try { document.execCommand("copy"); done(); }
        catch (e) { if (status) status.textContent = "Select the token and copy it with your keyboard."; }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, fallback);
      } else {
        fallback();
      }
    }
  });

  // A form marked data-once submits once: a double click sends one request.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    // Cancel buttons close their dialog through a submit with formmethod="dialog".
    var cancel = event.submitter && event.submitter.getAttribute("formmethod") === "dialog";
    if (!cancel && confirmed && form.closest("#confirm-dialog")) {
      event.preventDefault();
      var button = confirmed;
      confirmed = null;
      form.closest("dialog").close();
      if (button.form.requestSubmit) button.form.requestSubmit(button); else button.form.submit();
      return;
    }
    if (!form.matches("form[data-once]")) return;
    if (cancel) return;
    if (form.dataset.submitted) { event.preventDefault(); return; }
    form.dataset.submitted = "1";
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
      if (button.dataset.busyText) {
        button.dataset.idleText = button.textContent;
        button.textContent = button.dataset.busyText;
      }
    });
  });

  // A page restored by Back is live again: its once-forms may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.submitted;
      form.querySelectorAll("[aria-disabled=true]").forEach(function (button) {
        button.removeAttribute("aria-disabled");
        if (button.dataset.idleText) button.textContent = button.dataset.idleText;
      });
    });
  });

  function syncExpiration(select) {
    var form = select.form;
    var custom = form.querySelector("[data-custom-date]");
    var never = form.querySelector("[data-never-warning]");
    if (custom) {
      var show = select.value === "custom";
      custom.hidden = !show;
      var input = custom.querySelector("input");
      if (input) input.required = show;
    }
    if (never) never.hidden = select.value !== "never";
  }

  // The theme: System (follow the operating system), Light or Dark, remembered in the browser.
  function syncThemeSwitch() {
    var chosen = document.documentElement.getAttribute("data-theme") || "system";
    document.querySelectorAll("[data-theme-switch] input[name=theme]").forEach(function (input) {
      input.checked = input.value === chosen;
    });
  }

  function chooseTheme(value) {
    var root = document.documentElement;
    try {
      if (value === "system") window.localStorage.removeItem("console-theme");
      else window.localStorage.setItem("console-theme", value);
    } catch (e) { /* not remembered, but applied */ }
    if (value === "system") root.removeAttribute("data-theme");
    else root.setAttribute("data-theme", value);
  }

  // Narrow screens: the menu button shows and hides the navigation.
  function toggleNav(button, open) {
    if (open) document.body.setAttribute("data-nav-open", "");
    else document.body.removeAttribute("data-nav-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  document.addEventListener("keydown", function (event) {
    var button = document.querySelector("[data-nav-toggle]");
    if (event.key === "Escape" && button && document.body.hasAttribute("data-nav-open")) {
      toggleNav(button, false);
      button.focus();
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-theme-switch] input[name=theme]")) chooseTheme(event.target.value);
    if (event.target.matches("select[data-expiration]")) syncExpiration(event.target);
    if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
    if (event.target.matches("#id_allow_codex_local")) syncToggles();
  });

  // Access tokens need Codex Local: say so while the first toggle is off.
  function syncToggles() {
    var local = document.getElementById("id_allow_codex_local");
    var note = document.getElementById("tokens-need-local");
    if (local && note) note.hidden = local.checked;
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncThemeSwitch();
    document.querySelectorAll("select[data-expiration]").forEach(syncExpiration);
    document.querySelectorAll("[data-needs-js]").forEach(function (el) { el.hidden = false; });
    syncToggles();

    // A page answering a POST puts the list's address back, so a reload is a plain GET.
    var replace = document.body.getAttribute("data-replace-url");
    if (replace && window.history && history.replaceState) history.replaceState(null, "", replace);

    var shown = document.querySelectorAll("dialog[data-autoshow]");
    shown.forEach(function (dialog) { openModal(dialog); });
    // A page that answers a post with errors: focus on the first field in error.
    var invalid = document.querySelector("main form[method=post] [aria-invalid=true]");
    if (!shown.length && invalid) invalid.focus();

    // Once the new token's dialog closes, its value leaves the page for good.
    document.querySelectorAll("dialog[data-secret]").forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        if (dialog.open) return;  // the close() that openModal() does before showModal()
        dialog.querySelectorAll("[data-secret-value]").forEach(function (el) { el.value = ""; el.textContent = ""; });
        dialog.remove();
      });
    });
  });
})();
