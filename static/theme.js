// Runs in <head>, before the page paints: the theme the person chose (System, Light, Dark),
// so no page flashes the wrong one. Also marks that scripts run (the narrow-screen menu).
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  try {
    var theme = window.localStorage.getItem("console-theme");
    if (theme === "light" || theme === "dark") root.setAttribute("data-theme", theme);
  } catch (e) { /* storage refused: follow the system */ }
})();
