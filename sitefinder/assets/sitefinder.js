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
  SF.layerOptions = {};
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
    SF.legendKeys = [];
    // One compact line: "Leaflet | © OpenStreetMap … · SSB …", the rest on click.
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    (cfg.attribution || []).forEach(function (a) {
      map.attributionControl.addAttribution(a);
    });
    var attr = map.attributionControl.getContainer();
    attr.classList.add("sf-attribution");
    attr.title = cfg.text.attribution;
    attr.addEventListener("click", function (e) {
      if (e.target.tagName !== "A") attr.classList.toggle("sf-attribution-open");
    });
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    addHatchPattern();
    addNote();
    addSearch();
    fitPopupsToSmallScreens();
  };

  /* Called once every layer and control exists. */
  SF.ready = function () {
    addLegend();
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
        }, popupOptions());
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
    g._sfKey = key;
    SF.layers[key] = g;
    SF.layerOptions[key] = o;
    SF.counts[key] = data.features.length;
    if (o.legend) SF.legendKeys.push(key);
    return g;
  };

  /* The local basemap: several non-interactive layers grouped as one base layer. */
  SF.basemap = function (key, parts) {
    // Its own pane and canvas under the plots: switched on later (by the reader, or when
    // the tiles fail) it must not be drawn over them on the plots' canvas.
    if (!SF.map.getPane("sfBasemap")) SF.map.createPane("sfBasemap").style.zIndex = 250;
    var renderer = L.canvas({ pane: "sfBasemap" });
    var group = L.layerGroup();
    parts.forEach(function (part) {
      var lyr = L.geoJSON(part.data, {
        interactive: false,
        renderer: renderer,
        style: function () {
          return part.style;
        },
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, Object.assign({ radius: 2, renderer: renderer }, part.style));
        },
      });
      group.addLayer(lyr);
    });
    // The land colour under the vectors, as on printed maps; the tiles bring their own.
    group.on("add", function () {
      SF.map.getContainer().classList.add("sf-local-basemap");
    });
    group.on("remove", function () {
      SF.map.getContainer().classList.remove("sf-local-basemap");
    });
    SF.layers[key] = group;
    return group;
  };

  /* An online tile layer. When it cannot load a single tile (no network, a blocked
   * tile server), the map switches to the local basemap and says so in a note. */
  SF.tiles = function (key, url, opts) {
    var t = L.tileLayer(url, opts);
    var loaded = 0;
    t.on("tileload", function () {
      loaded += 1;
    });
    t.on("tileerror", function () {
      if (!loaded) tilesFailed(t);
    });
    SF.layers[key] = t;
    return t;
  };

  function tilesFailed(t) {
    SF.tilesFailed = true;
    SF.note.show(SF.cfg.text.tilesNote);
    var local = SF.layers.basemap;
    // Switched after the tile layer has finished handling its own error event.
    setTimeout(function () {
      if (local && SF.map.hasLayer(t)) {
        SF.map.removeLayer(t);
        SF.map.addLayer(local);
      }
    }, 0);
  }

  function addNote() {
    var c = L.control({ position: "bottomleft" });
    var d = el("div", "sf-note");
    d.setAttribute("role", "status");
    var msg = el("span", "sf-note-text");
    var close = el("button", "sf-note-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "OK");
    close.addEventListener("click", function () {
      d.classList.remove("sf-note-shown");
    });
    d.appendChild(msg);
    d.appendChild(close);
    c.onAdd = function () {
      L.DomEvent.disableClickPropagation(d);
      return d;
    };
    c.addTo(SF.map);
    SF.note = {
      el: d,
      show: function (text) {
        msg.textContent = text;
        d.classList.add("sf-note-shown");
      },
    };
  }

  /* On a phone the popup must fit between the controls: narrower, shorter, and the
   * controls that would cover it (legend, search, layer list) step aside while it is open. */
  function fitPopupsToSmallScreens() {
    var box = SF.map.getContainer();
    SF.map.on("popupopen", function () {
      if (box.clientWidth < 600) box.classList.add("sf-popup-open");
    });
    SF.map.on("popupclose", function () {
      box.classList.remove("sf-popup-open");
    });
  }

  function popupOptions() {
    var size = SF.map.getSize();
    // The popup's frame adds about 50 px to its content width.
    return {
      maxWidth: Math.max(200, Math.min(460, size.x - 80)),
      minWidth: Math.min(280, size.x - 80),
      maxHeight: Math.max(160, Math.min(440, size.y - 120)),
      autoPanPaddingTopLeft: L.point(10, 10),
      autoPanPaddingBottomRight: L.point(10, 30),
    };
  }

  function drawSwatch(s) {
    var sw = el("span", "sf-swatch sf-swatch-" + s.shape);
    if (s.shape === "hatch") return sw;
    if (s.shape === "line") {
      sw.style.borderTop = Math.max(2, s.weight) + "px " + (s.dash ? "dashed " : "solid ") + s.stroke;
      return sw;
    }
    sw.style.background = s.fill;
    sw.style.opacity = s.fillOpacity > 0 ? Math.min(1, 0.35 + s.fillOpacity) : 1;
    if (s.fillOpacity === 0) sw.style.background = "transparent";
    sw.style.border = "1px " + (s.dash ? "dashed " : "solid ") + (s.stroke === "none" ? s.fill : s.stroke);
    return sw;
  }

  /* The legend lists every layer on the map, in a fixed order, and follows the layer
   * control: switching a layer on adds its entry, switching it off removes it. */
  function addLegend() {
    var cfg = SF.cfg;
    var c = L.control({ position: "bottomright" });
    var body = el("div", "sf-legend-body");
    c.onAdd = function () {
      var d = el("details", "sf-legend");
      // Open on a large screen; on a phone it would cover the map until asked for.
      d.open = SF.map.getSize().x >= 600;
      d.appendChild(el("summary", "sf-legend-summary", cfg.text.legend));
      d.appendChild(body);
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    c.addTo(SF.map);
    SF.legend = c;
    SF.renderLegend = function () {
      body.textContent = "";
      SF.legendKeys
        .slice()
        .sort(function (a, b) {
          return SF.layerOptions[a].order - SF.layerOptions[b].order;
        })
        .forEach(function (key) {
          if (SF.map.hasLayer(SF.layers[key])) body.appendChild(legendSection(key));
        });
      if (cfg.text.missingNote) body.appendChild(el("div", "sf-legend-note", cfg.text.missingNote));
    };
    SF.map.on("overlayadd overlayremove layeradd layerremove", function (e) {
      if (!e.layer || e.layer._sfKey) SF.renderLegend();
    });
    SF.renderLegend();
  }

  function legendSection(key) {
    var o = SF.layerOptions[key];
    var sec = el("div", "sf-legend-section");
    sec.setAttribute("data-layer", key);
    var rows = o.legend || [];
    var inline = rows.length === 1 && !rows[0].label;
    var title = el("div", inline ? "sf-legend-row sf-legend-title" : "sf-legend-title");
    if (inline) title.appendChild(drawSwatch(rows[0].swatch));
    title.appendChild(el("span", null, o.label));
    sec.appendChild(title);
    if (!inline) {
      rows.forEach(function (r) {
        var row = el("div", "sf-legend-row");
        row.appendChild(drawSwatch(r.swatch));
        row.appendChild(el("span", null, r.label));
        sec.appendChild(row);
      });
    }
    if (key === "plots") {
      sec.appendChild(el("div", "sf-legend-note", SF.cfg.text.classNote));
      sec.appendChild(el("div", "sf-legend-note", SF.cfg.text.labelNote));
    }
    return sec;
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
