/* greenguard district view: fetches /api/v1/district (every 60 s, and on each change of a
 * filter or the sort) and draws the ranked table. The token is the one the institution page
 * keeps in localStorage (gg_token), or given once as #token=… in the address; the language
 * is the page's (gg_lang). A figure without data is "—", never 0. */
(function () {
  "use strict";

  var TEXT = {
    zh: {
      title: "区域总览", skip: "跳到内容", back: "单位页面", lang_button: "English",
      auth_title: "需要访问令牌", loading: "加载中…", live: "已更新", lost: "连接中断",
      auth_text: "请先在单位页面输入访问令牌，或打开以 #token=… 结尾的链接。",
      type: "类型", region: "区县", sort: "排序", all: "全部",
      school: "学校", agency: "机关", university: "高校", hospital: "医院", other: "其他",
      rank: "排名", institution: "单位", district: "区县",
      kgce_per_m2: "单位面积能耗", kgce_per_person: "人均能耗", water_m3_per_person: "人均用水",
      coverage: "数据覆盖", score: "考核得分", projection: "年末预计", open_alarms: "当前告警",
      edges_offline: "离线终端", name: "名称",
      insufficient: "数据不足", provisional: "预计", final: "全年",
      summary: "{n} 家单位 · {year} 年累计至今 · 目标见各数值下方",
      none: "没有符合条件的单位",
      note: "能耗为综合能耗（kgce），按建筑面积和用能人数折算；无数据的指标显示“—”，排序时置后。" +
        "数据覆盖 = 今年已过天数中有主表数据的天数比例。"
    },
    en: {
      title: "District overview", skip: "Skip to content", back: "Institution page",
      lang_button: "中文", auth_title: "Sign-in token needed", loading: "Loading…",
      live: "Updated", lost: "Connection lost",
      auth_text: "Sign in on the institution page first, or open a link ending in #token=….",
      type: "Type", region: "District", sort: "Sort by", all: "All",
      school: "School", agency: "Agency", university: "University", hospital: "Hospital",
      other: "Other", rank: "Rank", institution: "Institution", district: "District",
      kgce_per_m2: "kgce per m²", kgce_per_person: "kgce per person",
      water_m3_per_person: "Water per person", coverage: "Coverage", score: "Score",
      projection: "Projection", open_alarms: "Open alarms", edges_offline: "Edges offline",
      name: "Name", insufficient: "not enough data", provisional: "provisional",
      final: "final", summary: "{n} institutions · {year} year to date · targets below each figure",
      none: "No institution matches",
      note: "Energy is total energy (kgce) per floor area and per energy user; a figure without " +
        "data shows \"—\" and sorts last. Coverage = share of this year's days so far with " +
        "main-meter data."
    }
  };
  var TYPES = ["", "school", "agency", "university", "hospital", "other"];
  var SORTS = ["score", "kgce_per_m2", "kgce_per_person", "water_m3_per_person", "coverage",
               "open_alarms", "edges_offline", "name"];

  function store(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key);
      window.localStorage.setItem(key, value);
    } catch (e) { /* storage disabled */ }
    return null;
  }
  function takeToken() {
    var m = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    if (!m) return store("gg_token");
    var given;
    try { given = decodeURIComponent(m[1]); } catch (e) { given = m[1]; }
    store("gg_token", given);
    history.replaceState(null, "", window.location.pathname + window.location.search);
    return given || null;
  }
  var lang = store("gg_lang") === "en" ? "en" : "zh";
  var token = takeToken();
  var state = {type: "", region: "", sort: "score"};
  var view = null, regions = [], renders = 0, timer = null;

  function $(id) { return document.getElementById(id); }
  function t(key, args) {
    var s = TEXT[lang][key];
    if (s === undefined) s = key;
    if (args) Object.keys(args).forEach(function (k) { s = s.replace("{" + k + "}", args[k]); });
    return s;
  }
  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function num(x, d) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return Number(x).toLocaleString("en-US", {minimumFractionDigits: d, maximumFractionDigits: d});
  }
  function options(select, values, label, chosen) {
    select.innerHTML = values.map(function (v) {
      return '<option value="' + esc(v) + '"' + (v === chosen ? " selected" : "") + ">" +
        esc(label(v)) + "</option>";
    }).join("");
  }
  function statics() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title") + " · greenguard";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    $("lang").textContent = t("lang_button");
    $("lang").lang = lang === "zh" ? "en" : "zh-CN";
    if (status.key) setStatus(status.key, status.error);
    options($("f-type"), TYPES, function (v) { return v ? t(v) : t("all"); }, state.type);
    options($("f-region"), [""].concat(regions), function (v) { return v || t("all"); },
      state.region);
    options($("f-sort"), SORTS, t, state.sort);
  }
  // A figure with its target below, red when above the target (lower is better).
  function versus(id, value, target, d) {
    var over = value !== null && target !== null && value > target;
    return '<td data-testid="' + id + '" class="' + (over ? "bad" : "") + '">' + num(value, d) +
      (target !== null ? "<small>≤ " + num(target, d) + "</small>" : "") + "</td>";
  }
  function render() {
    statics();
    if (!view) return;
    var cols = [["rank", null], ["institution", "name"], ["type", null], ["district", null],
                ["kgce_per_m2", "kgce_per_m2"], ["kgce_per_person", "kgce_per_person"],
                ["water_m3_per_person", "water_m3_per_person"], ["coverage", "coverage"],
                ["score", "score"], ["projection", null], ["open_alarms", "open_alarms"],
                ["edges_offline", "edges_offline"]];
    $("head").innerHTML = cols.map(function (c) {
      if (!c[1]) return '<th scope="col">' + esc(t(c[0])) + "</th>";
      return '<th scope="col"' + (state.sort === c[1] ? ' aria-sort="' +
        (c[1] === "score" || c[1] === "coverage" ? "descending" : "ascending") + '"' : "") +
        '><button type="button" data-sort="' + c[1] + '">' + esc(t(c[0])) + "</button></th>";
    }).join("");
    $("summary").textContent = t("summary", {n: view.count, year: view.year});
    $("rows").innerHTML = view.institutions.length ? view.institutions.map(function (r) {
      return '<tr data-testid="district-row" data-institution="' + esc(r.institution) + '">' +
        '<td data-testid="d-rank">' + r.rank + "</td>" +
        '<td data-testid="d-name">' + esc(r.name) + "<small>" + esc(r.institution) + "</small></td>" +
        '<td data-testid="d-type">' + esc(t(r.type)) + "</td>" +
        '<td data-testid="d-district">' + esc(r.district || "—") + "</td>" +
        versus("d-kgce_per_m2", r.kgce_per_m2, r.target_kgce_per_m2, 2) +
        versus("d-kgce_per_person", r.kgce_per_person, r.target_kgce_per_person, 1) +
        versus("d-water_m3_per_person", r.water_m3_per_person, r.target_water_m3_per_person, 2) +
        '<td data-testid="d-coverage">' + (r.coverage === null ? "—" : num(r.coverage * 100, 0) +
          " %") + "<small>" + r.meters_reporting + " / " + r.meters + "</small></td>" +
        '<td data-testid="d-score">' + num(r.score, 1) + "<small>/ " + num(r.max_score, 0) +
          "</small></td>" +
        '<td data-testid="d-projection">' + esc(t(r.projection_status)) + "</td>" +
        '<td data-testid="d-open_alarms" class="' + (r.open_alarms ? "bad" : "") + '">' +
          r.open_alarms + "</td>" +
        '<td data-testid="d-edges_offline" class="' + (r.edges_offline ? "bad" : "ok") + '">' +
          r.edges_offline + " / " + r.edges + "</td></tr>";
    }).join("") : '<tr><td colspan="12" class="empty" data-testid="district-empty">' +
      esc(t("none")) + "</td></tr>";
    $("as-of").textContent = String(view.as_of).replace("T", " ").slice(0, 16);
    renders += 1;
    var main = $("main");
    main.setAttribute("data-state", "ready");
    main.setAttribute("data-renders", String(renders));
    main.setAttribute("data-query", query());
  }
  var status = {key: "", error: false};
  function setStatus(key, error) {
    status = {key: key, error: error};
    $("status").textContent = t(key);
    $("status").className = error ? "error" : "";
  }
  function query() {
    var q = ["sort=" + encodeURIComponent(state.sort)];
    if (state.type) q.push("type=" + encodeURIComponent(state.type));
    if (state.region) q.push("region=" + encodeURIComponent(state.region));
    return q.join("&");
  }
  function load() {
    if (timer) clearTimeout(timer);
    var headers = {Accept: "application/json"};
    if (token) headers.Authorization = "Bearer " + token;
    var asked = query();
    fetch("api/v1/district?" + asked, {headers: headers, cache: "no-store",
                                        credentials: "omit"}).then(function (r) {
      if (r.status === 401 || r.status === 403) {
        $("content").hidden = true;
        $("auth").hidden = false;
        $("main").setAttribute("data-state", "auth");
        setStatus("auth_title", true);
        return null;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (data) {
      if (!data) return;
      if (asked !== query()) return;  // a newer choice is on its way
      view = data;
      if (!state.type && !state.region) {  // the districts on offer: of the whole list
        regions = [];
        data.institutions.forEach(function (r) {
          if (r.district && regions.indexOf(r.district) < 0) regions.push(r.district);
        });
        regions.sort();
      }
      $("auth").hidden = true;
      $("content").hidden = false;
      setStatus("live", false);
      render();
      timer = setTimeout(load, 60000);
    }, function () {
      setStatus("lost", true);
      timer = setTimeout(load, 10000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    statics();
    setStatus("loading", false);
    $("lang").addEventListener("click", function () {
      lang = lang === "zh" ? "en" : "zh";
      store("gg_lang", lang);
      render();
    });
    $("filters").addEventListener("change", function () {
      state.type = $("f-type").value;
      state.region = $("f-region").value;
      state.sort = $("f-sort").value;
      load();
    });
    $("head").addEventListener("click", function (event) {
      var b = event.target.closest ? event.target.closest("button[data-sort]") : null;
      if (!b) return;
      state.sort = b.getAttribute("data-sort");
      load();
    });
    load();
  });
})();
