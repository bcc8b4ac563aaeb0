/* sitefinder map helpers. Part of sitefinder (MIT); written for this project.
 *
 * Every string that comes from data (plot names, owners, reasons, explanations, layer
 * feature names) is placed in the page with textContent, never innerHTML, so a plot named
 * "<script>alert(1)" (with its closing tag) is shown as text. Popups are built lazily on click so a map
 * with thousands of plots does no per-plot DOM work while loading.
 */
(function () {
  "use strict";
  var SF = (window.sitefinder = window.sitefinder || {});
  SF.layers = {};
  SF.counts = {};
  SF.index = [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  SF.el = el;

  SF.init = function (map, cfg) {
    SF.map = map;
    SF.cfg = cfg;
    (cfg.attribution || []).forEach(function (a) {
      map.attributionControl.addAttribution(a);
    });
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    addHatchPattern();
    addLegend();
    addSearch();
  };

  // An SVG pattern for excluded plots: they are drawn with the SVG renderer (they are few)
  // so they can be hatched, which survives black-and-white printing and colour blindness.
  function addHatchPattern() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", "0");
    svg.setAttribute("height", "0");
    svg.style.position = "absolute";
    var defs = document.createElementNS(ns, "defs");
    var pat = document.createElementNS(ns, "pattern");
    pat.setAttribute("id", "sf-hatch");
    pat.setAttribute("patternUnits", "userSpaceOnUse");
    pat.setAttribute("width", "6");
    pat.setAttribute("height", "6");
    pat.setAttribute("patternTransform", "rotate(45)");
    var bg = document.createElementNS(ns, "rect");
    bg.setAttribute("width", "6");
    bg.setAttribute("height", "6");
    bg.setAttribute("fill", "#d9d9d9");
    var line = document.createElementNS(ns, "rect");
    line.setAttribute("width", "2");
    line.setAttribute("height", "6");
    line.setAttribute("fill", "#555555");
    pat.appendChild(bg);
    pat.appendChild(line);
    defs.appendChild(pat);
    svg.appendChild(defs);
    document.body.appendChild(svg);
  }

  function plotStyle(f) {
    var k = f.properties.k;
    if (k >= 0) {
      return { color: "#1a1a1a", weight: 1, opacity: 0.9, fillColor: SF.cfg.palette[k], fillOpacity: 0.8 };
    }
    return { color: "#4d4d4d", weight: 1.5, dashArray: "4 3", fillColor: "url(#sf-hatch)", fillOpacity: 0.9 };
  }

  SF.plotPopup = function (p) {
    var t = SF.cfg.text;
    var d = el("div", "sf-popup");
    d.appendChild(el("div", "sf-title", p.n || p.i));
    var meta = el("div", "sf-meta");
    meta.appendChild(el("div", null, t.id + ": " + p.i));
    if (p.o) meta.appendChild(el("div", null, t.owner + ": " + p.o));
    if (p.a) meta.appendChild(el("div", null, t.area + ": " + p.a));
    d.appendChild(meta);
    var st = el("div", p.st === "ok" ? "sf-status sf-ok" : "sf-status sf-not-ok");
    st.appendChild(el("strong", null, t.status + ": "));
    st.appendChild(document.createTextNode(p.sl));
    if (p.re) st.appendChild(el("div", "sf-reason", t.reason + ": " + p.re));
    d.appendChild(st);
    var sc = el("div", "sf-score");
    sc.appendChild(el("strong", null, t.score + ": "));
    sc.appendChild(document.createTextNode(p.s));
    if (p.rk) sc.appendChild(document.createTextNode(" · " + t.rank + " " + p.rk));
    d.appendChild(sc);
    var table = el("table", "sf-breakdown");
    var head = el("tr");
    [t.criterion, t.measured, t.value, t.weight].forEach(function (h) {
      head.appendChild(el("th", null, h));
    });
    table.appendChild(head);
    SF.cfg.criteria.forEach(function (c, i) {
      var tr = el("tr");
      tr.appendChild(el("td", null, c.label));
      tr.appendChild(el("td", null, p.r[i]));
      tr.appendChild(el("td", "sf-num", p.v[i]));
      tr.appendChild(el("td", "sf-num", c.weight));
      table.appendChild(tr);
    });
    d.appendChild(table);
    if (p.x && p.x.length) {
      var extra = el("table", "sf-extra");
      p.x.forEach(function (kv) {
        var tr = el("tr");
        tr.appendChild(el("td", null, kv[0]));
        tr.appendChild(el("td", "sf-num", kv[1]));
        extra.appendChild(tr);
      });
      d.appendChild(extra);
    }
    if (p.e) d.appendChild(el("p", "sf-expl", p.e));
    return d;
  };

  function textTooltip(f, layer) {
    var txt = f.properties.t;
    if (txt) {
      layer.bindTooltip(function () {
        return el("span", null, txt);
      }, { sticky: true });
    }
  }

  /* Create one GeoJSON layer. o.kind is "plots" (score-coloured, popup with breakdown),
   * "excluded" (hatched plots, SVG renderer) or "plain" (fixed style, optional tooltip). */
  SF.layer = function (key, data, o) {
    var opts = {};
    if (o.kind === "plots" || o.kind === "excluded") {
      opts.style = plotStyle;
      if (o.kind === "excluded") opts.renderer = L.svg();
      opts.pointToLayer = function (f, ll) {
        return L.circleMarker(ll, { radius: 7 });
      };
      opts.onEachFeature = function (f, layer) {
        layer.bindPopup(function () {
          return SF.plotPopup(f.properties);
        }, { maxWidth: 460, minWidth: 280, maxHeight: 440 });
        var rk = f.properties.rk;
        if (rk && rk <= o.labelTop) {
          layer.bindTooltip(String(rk), { permanent: true, direction: "center", className: "sf-rank" });
        }
        SF.index.push({ f: f, l: layer, key: key });
      };
    } else {
      var style = o.style || {};
      opts.style = function (f) {
        var s = f.properties.sty;
        return s ? Object.assign({}, style, s) : style;
      };
      opts.interactive = o.interactive !== false;
      opts.pointToLayer = function (f, ll) {
        return L.circleMarker(ll, Object.assign({ radius: o.radius || 4 }, style));
      };
      if (opts.interactive) opts.onEachFeature = textTooltip;
    }
    var g = L.geoJSON(data, opts);
    SF.layers[key] = g;
    SF.counts[key] = data.features.length;
    return g;
  };

  /* The offline basemap: several non-interactive layers grouped as one base layer. */
  SF.basemap = function (key, parts) {
    var group = L.layerGroup();
    parts.forEach(function (part) {
      var lyr = L.geoJSON(part.data, {
        interactive: false,
        style: function () {
          return part.style;
        },
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, Object.assign({ radius: 2 }, part.style));
        },
      });
      group.addLayer(lyr);
    });
    SF.layers[key] = group;
    return group;
  };

  function addLegend() {
    var cfg = SF.cfg;
    var c = L.control({ position: "bottomright" });
    c.onAdd = function () {
      var d = el("div", "sf-legend");
      d.appendChild(el("div", "sf-legend-title", cfg.text.legendTitle));
      cfg.bins.forEach(function (b, i) {
        var row = el("div", "sf-legend-row");
        var sw = el("span", "sf-swatch");
        sw.style.background = cfg.palette[i];
        row.appendChild(sw);
        row.appendChild(el("span", null, b));
        d.appendChild(row);
      });
      var ex = el("div", "sf-legend-row");
      ex.appendChild(el("span", "sf-swatch sf-swatch-ex"));
      ex.appendChild(el("span", null, cfg.text.excludedLegend));
      d.appendChild(ex);
      if (cfg.text.labelNote) d.appendChild(el("div", "sf-legend-note", cfg.text.labelNote));
      if (cfg.text.missingNote) d.appendChild(el("div", "sf-legend-note", cfg.text.missingNote));
      L.DomEvent.disableClickPropagation(d);
      return d;
    };
    c.addTo(SF.map);
  }

  function entryLabel(it) {
    var p = it.f.properties;
    return p.n ? p.i + " – " + p.n : String(p.i);
  }

  /* Find a plot by id or name (exact first, then substring), zoom to it and open its popup.
   * Returns the plot id found, or null. */
  SF.find = function (query) {
    var q = String(query || "").trim().toLowerCase();
    if (!q) return null;
    var hit = null;
    var i;
    for (i = 0; i < SF.index.length && !hit; i++) {
      var p = SF.index[i].f.properties;
      if (String(p.i).toLowerCase() === q || entryLabel(SF.index[i]).toLowerCase() === q) hit = SF.index[i];
    }
    for (i = 0; i < SF.index.length && !hit; i++) {
      if (entryLabel(SF.index[i]).toLowerCase().indexOf(q) >= 0) hit = SF.index[i];
    }
    if (!hit) return null;
    var group = SF.layers[hit.key];
    if (!SF.map.hasLayer(group)) SF.map.addLayer(group);
    if (hit.l.getBounds) {
      SF.map.fitBounds(hit.l.getBounds(), { maxZoom: 17, animate: false });
    } else {
      SF.map.setView(hit.l.getLatLng(), 17, { animate: false });
    }
    hit.l.openPopup();
    return hit.f.properties.i;
  };

  function addSearch() {
    var t = SF.cfg.text;
    var c = L.control({ position: "topleft" });
    c.onAdd = function () {
      var d = el("div", "sf-search leaflet-bar");
      var input = el("input");
      input.type = "search";
      input.placeholder = t.search;
      input.setAttribute("aria-label", t.search);
      input.setAttribute("list", "sf-search-list");
      var list = el("datalist");
      list.id = "sf-search-list";
      // The option list is filled on first focus: thousands of options cost load time.
      input.addEventListener("focus", function () {
        if (list.childNodes.length) return;
        SF.index.forEach(function (it) {
          var opt = document.createElement("option");
          opt.value = entryLabel(it);
          list.appendChild(opt);
        });
      });
      var msg = el("div", "sf-search-msg");
      function go() {
        msg.textContent = SF.find(input.value) === null && input.value ? t.notFound : "";
      }
      input.addEventListener("change", go);
      input.addEventListener("keydown", function (e) {
        if (e.key === "Enter") go();
      });
      d.appendChild(input);
      d.appendChild(list);
      d.appendChild(msg);
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    c.addTo(SF.map);
  }
})();
