// castlewatch's local dashboard: draws the figures of the JSON block with plotly.js and,
// on the live page (run --serve), fetches them again every few seconds, redrawing what changed.
(function () {
  "use strict";
  var plotConfig = { displaylogo: false, responsive: true, typesetMath: false };
  var page = document.getElementById("castlewatch-page");

  function draw(figures) {
    Object.keys(figures).forEach(function (id) {
      var element = document.getElementById(id);
      if (element) {
        Plotly.react(element, figures[id].data, figures[id].layout, plotConfig);
      }
    });
  }

  draw(JSON.parse(document.getElementById("castlewatch-figures").textContent));

  var every = Number(document.body.dataset.live || 0);
  if (!every) {
    return;
  }
  var status = document.getElementById("castlewatch-status");
  function refresh() {
    fetch("dashboard.json", { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        status.textContent = "live, updated " + state.generated + " UTC";
        if (String(state.version) === page.dataset.version) {
          return;
        }
        // The HTML fragments are rendered by the server's template, escaped there.
        if (state.structure !== page.dataset.structure) {
          Array.prototype.forEach.call(page.querySelectorAll(".plot"), function (element) {
            Plotly.purge(element);
          });
          page.innerHTML = state.main_html;
          page.dataset.structure = state.structure;
        } else {
          document.getElementById("castlewatch-summary").innerHTML = state.summary_html;
          document.getElementById("castlewatch-totals").innerHTML = state.totals_html;
        }
        page.dataset.version = String(state.version);
        draw(state.figures);
      })
      .catch(function (error) {
        status.textContent = "not updated: " + error.message;
      })
      .then(function () {
        window.setTimeout(refresh, every);
      });
  }
  window.setTimeout(refresh, every);
})();
