/* sitefinder live weights panel. Part of sitefinder (MIT); written for this project.
 *
 * Re-scores and re-ranks every plot in the browser when a weight, an on/off switch or a
 * value-function threshold changes, with the same arithmetic as sitefinder/score.py
 * (tests/test_weights_panel.py holds the two equal to 1e-9). The spec comes from
 * sitefinder/weights_panel.py: per plot the raw metric values the criteria use and a base
 * state that the panel cannot change (hard exclusions, too few units, not measured).
 *
 * Plain ES5, no build step, no network: it must run in map_offline.html from a USB stick.
 * Text from data is placed with textContent only (see sitefinder.js).
 *
 * Documented API (window.sitefinder.weights), used by the tests and the benchmark:
 *   set({weights: {name: w}, on: {name: bool}, values: {name: {ideal: x, ...}}})
 *       applies changes (all or nothing; throws Error on an invalid one) and re-scores;
 *   state()      the current weights, switches and value functions;
 *   scores()     {id, score, rank, status} arrays in the spec's plot order;
 *   topChanges() {entered: [ids], left: [ids]} against the top K as run;
 *   reset()      back to the scenario as run;  exportYaml()  the changed scenario as YAML;
 *   download()   what the "Eksporter" button does;
 *   lastMs       the last re-score in ms (lastTimings: {score, map} parts of it).
 */
(function () {
  "use strict";
  var SF = (window.sitefinder = window.sitefinder || {});
  var W = (SF.weights = {});

  // Base states from weights_panel.py.
  var ELIGIBLE = 0, HARD_EXCLUDED = 1, TOO_SMALL = 2;

  // ------------------------------------------------------------ value functions
  // Same operations in the same order as score.py, so the doubles come out the same.

  function linear(x, ideal, unacceptable) {
    var v = (x - unacceptable) / (ideal - unacceptable);
    return (v < 0 ? 0 : v > 1 ? 1 : v) + 0; // "+ 0": no -0, as np.clip(...) + 0.0
  }

  // np.interp: held flat outside the points, slope * (x - x_j) + v_j inside.
  function piecewise(x, points) {
    var n = points.length;
    if (x <= points[0][0]) return points[0][1];
    if (x >= points[n - 1][0]) return points[n - 1][1];
    var j = 0;
    while (points[j + 1][0] <= x) j++;
    var a = points[j], b = points[j + 1];
    var slope = (b[1] - a[1]) / (b[0] - a[0]);
    return slope * (x - a[0]) + a[1];
  }

  function valueOf(fn, x) {
    if (fn.kind === "linear") return linear(x, fn.ideal, fn.unacceptable);
    if (fn.kind === "window") {
      return Math.min(linear(x, fn.ideal_from, fn.unacceptable_below),
                      linear(x, fn.ideal_to, fn.unacceptable_above));
    }
    return piecewise(x, fn.points);
  }

  // Why a value function would be refused by the scenario loader (config.py), or "".
  function invalidReason(c, fn) {
    var t = W.spec.text;
    var nums = fn.kind === "piecewise" ? fn.points.map(function (p) { return p[0]; })
      : fn.kind === "linear" ? [fn.ideal, fn.unacceptable]
      : [fn.unacceptable_below, fn.ideal_from, fn.ideal_to, fn.unacceptable_above];
    for (var i = 0; i < nums.length; i++) {
      if (typeof nums[i] !== "number" || !isFinite(nums[i])) return t.invalidNumber;
    }
    if (fn.kind === "linear") {
      // The direction stays as in the scenario: flipping it is a different criterion,
      // and the loader refuses a distance where more is better without `direction`.
      var implied = fn.ideal < fn.unacceptable ? "lower_is_better" : "higher_is_better";
      if (fn.ideal === fn.unacceptable || implied !== c.value0.implied) {
        return t.invalidLinear.replace("{dir}", c.value0.implied === "lower_is_better" ? t.lower : t.higher);
      }
    } else if (fn.kind === "window") {
      if (!(nums[0] < nums[1] && nums[1] <= nums[2] && nums[2] < nums[3])) return t.invalidWindow;
    } else {
      for (var k = 1; k < nums.length; k++) if (!(nums[k] > nums[k - 1])) return t.invalidPiecewise;
      var inRange = fn.points.every(function (p) { return p[1] >= 0 && p[1] <= 1; });
      if (!inRange) return t.invalidPiecewise; // values 0–1; the panel only moves the x's
    }
    return "";
  }

  // ------------------------------------------------------------------ scoring

  function criterionValues(c) {
    // Cached per criterion: moving a weight does not re-evaluate any value function.
    if (c.cache && c.cacheKey === JSON.stringify(c.value)) return c.cache;
    var x = c.x, n = x.length, out = new Float64Array(n);
    for (var i = 0; i < n; i++) out[i] = x[i] !== x[i] ? c.missing : valueOf(c.value, x[i]);
    c.cache = out;
    c.cacheKey = JSON.stringify(c.value);
    return out;
  }

  function effectiveWeight(c) {
    return c.on && !c.dropped ? c.weight : 0;
  }

  /* Score, status and rank of every plot: score.py's score_metrics and rank_scores. */
  function compute() {
    var spec = W.spec, crit = W.criteria, n = spec.plots.id.length, k = crit.length;
    var vals = [], w = new Float64Array(k), total = 0, j, i;
    for (j = 0; j < k; j++) {
      vals.push(criterionValues(crit[j]));
      w[j] = effectiveWeight(crit[j]);
      total += w[j];
    }
    var score = new Float64Array(n), status = new Array(n), unacc = new Array(n);
    var base = spec.plots.base;
    for (i = 0; i < n; i++) {
      if (base[i] > TOO_SMALL) {
        score[i] = NaN;
        status[i] = null; // not measured: the status as run stays
        continue;
      }
      var s = 0;
      for (j = 0; j < k; j++) s += w[j] * vals[j][i];
      score[i] = total > 0 ? 100 * s / total : NaN;
      var bad = null;
      for (j = 0; j < k; j++) {
        var c = crit[j];
        // A missing value (nothing of that kind nearby) is not "unacceptable".
        if (c.on && !c.dropped && c.excludeUnacceptable && vals[j][i] <= 0 && c.x[i] === c.x[i]) {
          (bad = bad || []).push(j);
        }
      }
      unacc[i] = bad;
      status[i] = bad || base[i] === HARD_EXCLUDED ? "excluded"
        : base[i] === TOO_SMALL ? "too_small" : "ok";
    }
    var rank = rankScores(score, status);
    W.current = { score: score, status: status, rank: rank, unacc: unacc, vals: vals, total: total };
  }

  // Rank 1 = best score among ranked plots; ties broken by plot id (rank_scores).
  function rankScores(score, status) {
    var ids = W.spec.plots.id, order = [], i;
    for (i = 0; i < score.length; i++) if (status[i] === "ok") order.push(i);
    order.sort(function (a, b) {
      var sa = score[a], sb = score[b];
      if (sa !== sb) {
        if (sa !== sa) return 1; // NaN last, as pandas' sort_values
        if (sb !== sb) return -1;
        return sb - sa;
      }
      return ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0;
    });
    var rank = new Array(score.length);
    for (i = 0; i < order.length; i++) rank[order[i]] = i + 1;
    return rank;
  }

  // ------------------------------------------------------------- formatting

  function fmt(x, decimals) {
    if (x === null || x === undefined || x !== x) return "–";
    var s = Math.abs(x).toFixed(decimals);
    var parts = s.split(".");
    var sep = W.spec.language === "nb" ? "\u202f" : ",";
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, sep);
    s = parts.join(W.spec.language === "nb" ? "," : ".");
    if (x < 0 && Number(s.replace(/\D/g, "")) !== 0) s = (W.spec.language === "nb" ? "\u2212" : "-") + s;
    return s;
  }

  function fmtWeight(w) {
    return fmt(w, w === Math.round(w) ? 0 : 2);
  }

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (m, key) {
      return values[key] !== undefined ? String(values[key]) : m;
    });
  }

  // ------------------------------------------------------------ map update

  // map_style.score_class: the class of a score within the map's class limits, which stay
  // as drawn so that the legend stays true while the weights move.
  function classOf(score) {
    if (score !== score) return -1;
    var breaks = W.spec.breaks, n = Math.max(breaks.length - 1, 1), k = -1;
    for (var b = 0; b < breaks.length; b++) if (breaks[b] <= score) k = b;
    return Math.max(0, Math.min(k, n - 1));
  }

  function styleOf(entry, k) {
    if (k >= 0) {
      return { color: "#1a1a1a", weight: 1, opacity: 0.9, dashArray: null,
               fillColor: SF.cfg.palette[k], fillOpacity: 0.8 };
    }
    // The canvas layer of ranked plots cannot draw the SVG hatch: a grey, dashed plot.
    var fill = entry.key === "excluded" ? "url(#sf-hatch)" : "#bdbdbd";
    return { color: "#4d4d4d", weight: 1.5, opacity: 1, dashArray: "4 3", fillColor: fill,
             fillOpacity: 0.9 };
  }

  function setLabel(entry, rank) {
    var want = rank && rank <= W.spec.topK ? rank : null;
    if (entry.label === want) return;
    if (entry.label) entry.l.unbindTooltip();
    if (want) {
      entry.l.bindTooltip(String(want), { permanent: true, direction: "center", className: "sf-rank" });
    }
    entry.label = want;
  }

  function updateMap() {
    var cur = W.current, list = W.entries;
    for (var e = 0; e < list.length; e++) {
      var entry = list[e], i = entry.i, p = entry.f.properties;
      if (cur.status[i] === null) continue;
      var ok = cur.status[i] === "ok";
      var k = ok ? classOf(cur.score[i]) : -1;
      if (k !== p.k) {
        p.k = k;
        if (entry.l.setStyle) entry.l.setStyle(styleOf(entry, k));
      }
      var rk = ok ? cur.rank[i] : undefined;
      if (rk) p.rk = rk; else delete p.rk;
      setLabel(entry, rk);
      // Popups are rebuilt from the properties when opened (refreshProps); an open one now.
      if (entry.l.isPopupOpen && entry.l.isPopupOpen()) entry.l.getPopup().update();
    }
    SF.cfg.criteria.forEach(function (cc) {
      var c = W.byName[cc.name];
      if (c) cc.weight = W.changed ? fmtWeight(effectiveWeight(c)) : cc.weight0;
    });
  }

  /* Bring a plot's popup properties up to date just before its popup is built: formatting
   * 5,000 popups on every slider move would cost more than the scoring itself. */
  function refreshProps(p) {
    var entry = W.byId[p.i];
    if (!entry || !W.current) return;
    var o = entry.orig, i = entry.i, t = W.spec.text, cur = W.current;
    if (!W.changed || cur.status[i] === null) {
      p.s = o.s; p.st = o.st; p.sl = o.sl; p.re = o.re; p.v = o.v.slice(); p.e = o.e;
      return;
    }
    p.s = fmt(cur.score[i], 1);
    p.st = cur.status[i];
    p.sl = p.st === "ok" ? t.statusOk : p.st === "excluded" ? t.statusExcluded : t.statusTooSmall;
    p.re = reasonOf(i);
    p.v = SF.cfg.criteria.map(function (cc, col) {
      var c = W.byName[cc.name];
      return c ? fmt(cur.vals[c.index][i], 2) : o.v[col];
    });
    p.e = o.e ? t.explanationNote + " " + o.e : "";
  }

  // The reason as score.py writes it: fixed reasons first, then "; " and each criterion.
  function reasonOf(i) {
    var cur = W.current, t = W.spec.text, base = W.spec.plots.base[i];
    var parts = [];
    var fixed = W.spec.plots.reason[i];
    if (base === HARD_EXCLUDED && fixed) parts.push(fixed);
    (cur.unacc[i] || []).forEach(function (j) {
      var c = W.criteria[j];
      var shown = fmt(c.x[i], 0) + (c.unit ? "\u00a0" + c.unit : "");
      parts.push(fill(t.unacceptableReason, { label: c.labelLower, value: shown }));
    });
    if (!parts.length && base === TOO_SMALL) parts.push(fixed);
    // language.sentence: capital first letter, full stop at the end.
    var text = parts.join("; ").trim();
    if (!text) return "";
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?:]$/.test(text) ? text : text + ".";
  }

  // ------------------------------------------------------------- re-scoring

  W.rescore = function () {
    var t0 = performance.now();
    W.changed = isChanged();
    compute();
    var t1 = performance.now();
    updateMap();
    updateSummary();
    var t2 = performance.now();
    // For the benchmark: scoring and ranking, then the map and panel brought up to date.
    W.lastTimings = { score: t1 - t0, map: t2 - t1 };
    W.lastMs = t2 - t0;
    return W.lastMs;
  };

  function isChanged() {
    return W.criteria.some(function (c) {
      return c.weight !== c.weight0 || c.on !== true || JSON.stringify(c.value) !== JSON.stringify(c.value0);
    });
  }

  W.scores = function () {
    var cur = W.current, n = W.spec.plots.id.length, out = { id: W.spec.plots.id.slice(),
      score: [], rank: [], status: [] };
    for (var i = 0; i < n; i++) {
      out.score.push(cur.score[i] === cur.score[i] ? cur.score[i] : null);
      out.rank.push(cur.rank[i] || null);
      out.status.push(cur.status[i]);
    }
    return out;
  };

  W.topChanges = function () {
    var K = W.spec.topK, before = W.spec.plots.rank, now = W.current.rank, ids = W.spec.plots.id;
    var entered = [], left = [];
    for (var i = 0; i < ids.length; i++) {
      var was = before[i] && before[i] <= K, is = now[i] && now[i] <= K;
      if (is && !was) entered.push(i);
      if (was && !is) left.push(i);
    }
    var by = function (r) { return function (a, b) { return r[a] - r[b]; }; };
    entered.sort(by(now));
    left.sort(by(before));
    return { entered: entered.map(function (i) { return ids[i]; }),
             left: left.map(function (i) { return ids[i]; }), enteredIdx: entered, leftIdx: left };
  };

  W.state = function () {
    var out = { weights: {}, on: {}, values: {} };
    W.criteria.forEach(function (c) {
      out.weights[c.name] = c.weight;
      out.on[c.name] = c.on;
      out.values[c.name] = JSON.parse(JSON.stringify(c.value));
    });
    return out;
  };

  /* Apply changes all or nothing; an invalid one throws and leaves the state as it was. */
  W.set = function (changes) {
    changes = changes || {};
    var plan = [];
    Object.keys(changes.weights || {}).forEach(function (name) {
      var c = need(name), w = Number(changes.weights[name]);
      if (!(w >= 0) || !isFinite(w)) throw new Error("weight of " + name + " must be a number >= 0");
      plan.push(function () { c.weight = w; });
    });
    Object.keys(changes.on || {}).forEach(function (name) {
      var c = need(name), on = !!changes.on[name];
      plan.push(function () { c.on = on; });
    });
    Object.keys(changes.values || {}).forEach(function (name) {
      var c = need(name), fn = JSON.parse(JSON.stringify(c.value)), given = changes.values[name];
      Object.keys(given).forEach(function (key) {
        if (key === "points") {
          fn.points = given.points.map(function (p) { return [Number(p[0]), Number(p[1])]; });
        } else {
          fn[key] = Number(given[key]);
        }
      });
      var why = invalidReason(c, fn);
      if (why) throw new Error(name + ": " + why);
      plan.push(function () { c.value = fn; });
    });
    plan.forEach(function (f) { f(); });
    syncControls();
    return W.rescore();
  };

  function need(name) {
    var c = W.byName[name];
    if (!c) throw new Error("unknown criterion " + name);
    return c;
  }

  W.reset = function () {
    W.criteria.forEach(function (c) {
      c.weight = c.weight0;
      c.on = true;
      c.value = JSON.parse(JSON.stringify(c.value0));
    });
    syncControls();
    return W.rescore();
  };

  // ------------------------------------------------------------------ export

  var RESERVED = /^(y|yes|n|no|true|false|on|off|null|~)$/i;

  function yamlKey(k) {
    return /^[A-Za-z_][A-Za-z0-9_\-]*$/.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k);
  }

  function yamlNumber(x) {
    var s = String(x);
    // PyYAML reads "1e-07" as text: a float needs a dot before its exponent.
    if (s.indexOf("e") >= 0 && s.indexOf(".") < 0) s = s.replace("e", ".0e");
    return s;
  }

  function yamlFlow(v) {
    if (v === null || v === undefined) return "null";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") return yamlNumber(v);
    if (typeof v === "string") return JSON.stringify(v); // JSON strings are YAML strings
    if (Array.isArray(v)) return "[" + v.map(yamlFlow).join(", ") + "]";
    return "{" + Object.keys(v).map(function (k) { return yamlKey(k) + ": " + yamlFlow(v[k]); })
      .join(", ") + "}";
  }

  function isBlock(v) {
    if (Array.isArray(v)) return v.some(function (x) { return x !== null && typeof x === "object" && !Array.isArray(x); });
    return v !== null && typeof v === "object" && Object.keys(v).length > 0;
  }

  function yamlMapping(obj, indent, out) {
    var pad = new Array(indent + 1).join(" ");
    Object.keys(obj).forEach(function (k) {
      var v = obj[k];
      if (!isBlock(v)) {
        out.push(pad + yamlKey(k) + ": " + yamlFlow(v));
      } else if (Array.isArray(v)) {
        out.push(pad + yamlKey(k) + ":");
        v.forEach(function (item) {
          if (!isBlock(item)) { out.push(pad + "  - " + yamlFlow(item)); return; }
          var lines = [];
          yamlMapping(item, indent + 4, lines);
          lines[0] = pad + "  - " + lines[0].slice(indent + 4);
          Array.prototype.push.apply(out, lines);
        });
      } else {
        out.push(pad + yamlKey(k) + ":");
        yamlMapping(v, indent + 2, out);
      }
    });
  }

  /* The scenario as run with the panel's criteria: every other setting kept. */
  W.exportYaml = function () {
    var spec = W.spec, t = spec.text;
    var data = JSON.parse(JSON.stringify(spec.scenario));
    W.criteria.forEach(function (c) {
      var d = data.criteria[c.name];
      // Off = not weighted and no longer excluding: what the browser scored.
      d.weight = c.on ? c.weight : 0;
      if (!c.on) d.exclude_when_unacceptable = false;
      d.value = JSON.parse(JSON.stringify(c.value));
      delete d.value.implied;
    });
    var date = new Date().toISOString().slice(0, 10);
    var head = [fill(t.exportHeader, { date: date }), fill(t.exportBase, { name: spec.scenarioName }),
                fill(t.exportUse, { file: W.fileName() })];
    if (spec.public) head.push(t.exportPublic);
    var out = head.map(function (h) { return "# " + h; });
    yamlMapping(data, 0, out);
    return out.join("\n") + "\n";
  };

  W.fileName = function () {
    var slug = String(W.spec.scenarioName).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    return "scenario-" + (slug || "kart") + "-" + (W.spec.language === "nb" ? "endret" : "changed") + ".yaml";
  };

  W.download = function () {
    var blob = new Blob([W.exportYaml()], { type: "application/x-yaml" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = W.fileName();
    document.body.appendChild(a);
    a.click();
    document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
  };

  // --------------------------------------------------------------------- panel

  function el(tag, cls, text) {
    return SF.el(tag, cls, text);
  }

  var FIELDS = {
    linear: ["ideal", "unacceptable"],
    window: ["unacceptable_below", "ideal_from", "ideal_to", "unacceptable_above"],
  };

  function numberInput(value, label, onChange) {
    var input = el("input", "sf-w-num");
    input.type = "number";
    input.step = "any";
    input.value = String(value);
    input.setAttribute("aria-label", label);
    input.addEventListener("change", onChange);
    return input;
  }

  function criterionRow(c) {
    var t = W.spec.text;
    var row = el("div", "sf-w-crit");
    var head = el("div", "sf-w-head");
    var on = el("input", "sf-w-on");
    on.type = "checkbox";
    on.checked = true;
    on.title = t.on;
    on.setAttribute("aria-label", t.on + ": " + c.label);
    on.setAttribute("data-criterion", c.name);
    head.appendChild(on);
    head.appendChild(el("span", "sf-w-label", c.label));
    var slider = el("input", "sf-w-slider");
    slider.type = "range";
    slider.min = "0";
    slider.max = String(W.sliderMax);
    slider.step = "0.5";
    slider.value = String(c.weight);
    slider.setAttribute("aria-label", t.weight + ": " + c.label);
    slider.setAttribute("data-criterion", c.name);
    var number = numberInput(c.weight, t.weight + ": " + c.label, function () {
      var w = Number(number.value);
      if (number.value === "" || !(w >= 0)) { number.value = String(c.weight); return; }
      c.weight = w;
      slider.value = String(w);
      W.rescore();
    });
    number.classList.add("sf-w-weight");
    number.min = "0";
    slider.addEventListener("input", function () {
      c.weight = Number(slider.value);
      number.value = String(c.weight);
      W.rescore();
    });
    on.addEventListener("change", function () {
      c.on = on.checked;
      row.classList.toggle("sf-w-off", !c.on);
      W.rescore();
    });
    var weightRow = el("div", "sf-w-weightrow");
    weightRow.appendChild(slider);
    weightRow.appendChild(number);
    row.appendChild(head);
    row.appendChild(weightRow);
    if (c.dropped) {
      row.classList.add("sf-w-dropped");
      row.appendChild(el("div", "sf-w-note", t.noData));
      [on, slider, number].forEach(function (x) { x.disabled = true; });
    }
    row.appendChild(thresholdBlock(c));
    c.controls = { row: row, on: on, slider: slider, number: number };
    return row;
  }

  function thresholdBlock(c) {
    var t = W.spec.text;
    var details = el("details", "sf-w-thresholds");
    var summary = el("summary", null, t.thresholds + (c.excludeUnacceptable ? " · " + t.excludes : ""));
    details.appendChild(summary);
    var msg = el("div", "sf-w-invalid-msg");
    var inputs = [];
    var unit = c.unit ? " (" + c.unit + ")" : "";
    function apply() {
      var fn = JSON.parse(JSON.stringify(c.value));
      inputs.forEach(function (inp) {
        var x = inp.value === "" ? NaN : Number(inp.value);
        if (fn.kind === "piecewise") fn.points[inp.pointIndex][0] = x; else fn[inp.field] = x;
      });
      var why = invalidReason(c, fn);
      inputs.forEach(function (inp) { inp.classList.toggle("sf-w-invalid", !!why); });
      msg.textContent = why;
      if (why) return; // keep scoring with the last valid thresholds
      c.value = fn;
      W.rescore();
    }
    var grid = el("div", "sf-w-grid");
    if (c.value.kind === "piecewise") {
      c.value.points.forEach(function (p, idx) {
        var label = fill(t.point, { i: idx + 1, v: fmt(p[1], 1) }) + unit;
        var inp = numberInput(p[0], c.label + ": " + label, apply);
        inp.pointIndex = idx;
        grid.appendChild(el("label", null, label));
        grid.appendChild(inp);
        inputs.push(inp);
      });
    } else {
      FIELDS[c.value.kind].forEach(function (field) {
        var label = t[field] + unit;
        var inp = numberInput(c.value[field], c.label + ": " + label, apply);
        inp.field = field;
        inp.setAttribute("data-field", field);
        grid.appendChild(el("label", null, label));
        grid.appendChild(inp);
        inputs.push(inp);
      });
    }
    details.appendChild(grid);
    details.appendChild(msg);
    c.inputs = inputs;
    c.msg = msg;
    return details;
  }

  // Controls follow the state after set() and reset().
  function syncControls() {
    W.criteria.forEach(function (c) {
      if (!c.controls) return;
      if (c.weight > Number(c.controls.slider.max)) c.controls.slider.max = String(Math.ceil(c.weight));
      c.controls.slider.value = String(c.weight);
      c.controls.number.value = String(c.weight);
      c.controls.on.checked = c.on;
      c.controls.row.classList.toggle("sf-w-off", !c.on);
      c.inputs.forEach(function (inp) {
        inp.value = String(c.value.kind === "piecewise" ? c.value.points[inp.pointIndex][0] : c.value[inp.field]);
        inp.classList.remove("sf-w-invalid");
      });
      c.msg.textContent = "";
    });
  }

  function plotName(i) {
    var entry = W.byId[W.spec.plots.id[i]];
    var name = entry && entry.f.properties.n;
    return name ? W.spec.plots.id[i] + " " + name : W.spec.plots.id[i];
  }

  function updateSummary() {
    if (!W.ui) return;
    var t = W.spec.text, cur = W.current, ui = W.ui, K = W.spec.topK;
    var nOk = 0, nEx = 0;
    for (var i = 0; i < cur.status.length; i++) {
      if (cur.status[i] === "ok") nOk++;
      else if (cur.status[i] === "excluded") nEx++;
    }
    ui.status.textContent = fill(W.changed ? t.changed : t.unchanged, { name: W.spec.scenarioName })
      + " " + fill(t.ranked, { n: fmt(nOk, 0) + " " + (nOk === 1 ? t.plot : t.plots), x: fmt(nEx, 0) });
    ui.warning.textContent = cur.total > 0 ? "" : t.noWeight;
    ui.exportBtn.disabled = !(cur.total > 0);
    var ch = W.topChanges();
    ui.changes.textContent = "";
    if (!W.changed) return;
    var before = W.spec.plots.rank;
    ui.changes.appendChild(changeList(fill(t.entered, { k: K }), ch.enteredIdx.map(function (i) {
      return plotName(i) + " (" + fill(t.rankOf, { r: cur.rank[i] })
        + (before[i] ? ", " + fill(t.before, { r: before[i] }) : "") + ")";
    })));
    ui.changes.appendChild(changeList(fill(t.left, { k: K }), ch.leftIdx.map(function (i) {
      var now = cur.rank[i] ? fill(t.rankOf, { r: cur.rank[i] }) : t.excludedNow;
      return plotName(i) + " (" + now + ")";
    })));
  }

  function changeList(title, items) {
    var d = el("div", "sf-w-change");
    d.appendChild(el("strong", null, title + ": "));
    if (!items.length) { d.appendChild(document.createTextNode(W.spec.text.none)); return d; }
    var ul = el("ul");
    items.forEach(function (s) { ul.appendChild(el("li", null, s)); });
    d.appendChild(ul);
    return d;
  }

  function addPanel(map) {
    var t = W.spec.text;
    // Left, under search and zoom: the right side holds the layer list and the legend.
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = el("div", "sf-weights leaflet-bar");
      var toggle = el("button", "sf-w-toggle", t.toggle);
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "true");
      var body = el("div", "sf-w-body");
      var title = el("div", "sf-w-title");
      title.appendChild(el("strong", null, t.title));
      var hide = el("button", "sf-w-hide", t.close);
      hide.type = "button";
      title.appendChild(hide);
      body.appendChild(title);
      body.appendChild(el("p", "sf-w-intro", t.intro));
      body.appendChild(el("p", "sf-w-note", fill(t.selectionNote, { name: W.spec.scenarioName })));
      var list = el("div", "sf-w-list");
      W.criteria.forEach(function (c) { list.appendChild(criterionRow(c)); });
      var status = el("div", "sf-w-status");
      var warning = el("div", "sf-w-warning");
      var changes = el("div", "sf-w-changes");
      var buttons = el("div", "sf-w-buttons");
      var resetBtn = el("button", "sf-w-reset", t.reset);
      resetBtn.type = "button";
      resetBtn.addEventListener("click", function () { W.reset(); });
      var exportBtn = el("button", "sf-w-export", t.export);
      exportBtn.type = "button";
      exportBtn.title = t.exportTitle;
      exportBtn.addEventListener("click", function () { W.download(); });
      buttons.appendChild(resetBtn);
      buttons.appendChild(exportBtn);
      // What changed comes first: it is what the meeting looks at after moving a slider.
      body.appendChild(status);
      body.appendChild(warning);
      body.appendChild(buttons);
      body.appendChild(changes);
      body.appendChild(list);
      body.appendChild(el("p", "sf-w-note", t.fixedNote));
      box.appendChild(toggle);
      box.appendChild(body);
      function show(open) {
        box.classList.toggle("sf-w-collapsed", !open);
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      }
      toggle.addEventListener("click", function () { show(box.classList.contains("sf-w-collapsed")); });
      hide.addEventListener("click", function () { show(false); });
      // On a phone the panel would cover the map: it starts folded there.
      show(window.innerWidth >= 800 && window.innerHeight >= 500);
      W.ui = { box: box, status: status, warning: warning, changes: changes, exportBtn: exportBtn,
               toggle: toggle, body: body };
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.addTo(map);
    // Below the zoom and full-screen buttons, which are added after the panel: a tall
    // panel above them would push them out of reach.
    var box = control.getContainer();
    setTimeout(function () { box.parentNode.appendChild(box); }, 0);
  }

  // ---------------------------------------------------------------------- init

  W.init = function (map, spec) {
    W.spec = spec;
    W.map = map;
    var maxWeight = 0;
    W.criteria = spec.criteria.map(function (c, index) {
      var raw = spec.metrics[c.metric];
      var x = new Float64Array(raw.length);
      for (var i = 0; i < raw.length; i++) x[i] = raw[i] === null ? NaN : raw[i];
      maxWeight = Math.max(maxWeight, c.weight);
      return { name: c.name, label: c.label, labelLower: c.label.charAt(0).toLowerCase() + c.label.slice(1),
               unit: c.unit, index: index, x: x, missing: c.missing,
               excludeUnacceptable: c.excludeUnacceptable, dropped: c.dropped,
               weight: c.weight, weight0: c.weight, on: true,
               value: JSON.parse(JSON.stringify(c.value)), value0: c.value };
    });
    W.sliderMax = Math.max(10, Math.ceil(2 * maxWeight));
    W.byName = {};
    W.criteria.forEach(function (c) { W.byName[c.name] = c; });
    var index = {};
    spec.plots.id.forEach(function (id, i) { if (!(id in index)) index[id] = i; });
    W.byId = {};
    W.entries = [];
    (SF.index || []).forEach(function (it) {
      var p = it.f.properties, i = index[p.i];
      if (i === undefined) return;
      var entry = { f: it.f, l: it.l, key: it.key, i: i,
                    label: p.rk && it.key === "plots" && p.rk <= spec.topK ? p.rk : null,
                    orig: { s: p.s, st: p.st, sl: p.sl, re: p.re, v: (p.v || []).slice(), e: p.e } };
      W.byId[p.i] = entry;
      W.entries.push(entry);
    });
    (SF.cfg.criteria || []).forEach(function (cc) { cc.weight0 = cc.weight; });
    var popup = SF.plotPopup;
    SF.plotPopup = function (p) {
      refreshProps(p);
      return popup(p);
    };
    compute();
    W.changed = false;
    addPanel(map);
    updateSummary();
  };
})();
