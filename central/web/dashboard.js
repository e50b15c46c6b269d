/* greenguard built-in dashboard: fetches /api/v1/institutions/<id>/dashboard (every 10 s) and
 * .../dashboard/live (every 2 s) and draws them as hand-written SVG. No library, no
 * request to any other origin (the server's Content-Security-Policy forbids it).
 *
 * Access: a token pasted into the sign-in box, or given once as #token=… in the address, is
 * kept in localStorage (gg_token)
 * and removed from the address bar; every request sends it as a bearer token. A 401 or 403
 * shows the "token needed" panel instead of figures. Language: zh-CN by default, English on
 * request, remembered in localStorage (gg_lang). */
(function () {
  "use strict";

  var TEXT = {
    zh: {
      title: "节能监测", skip: "跳到内容", lang_button: "English", live_status: "实时",
      lost: "连接中断", loading: "加载中…",
      auth_title: "需要访问令牌",
      auth_text: "请在下方粘贴访问令牌（由 greenguard central create-token 生成，或向管理员索取），" +
        "或打开以 #token=… 结尾的仪表盘链接。",
      auth_paste: "访问令牌", auth_use: "使用此令牌",
      auth_rejected: "已保存的访问令牌被拒绝（已过期或已撤销）。请打开新的仪表盘链接。",
      auth_forget: "清除已保存的令牌",
      targets: "年度考核指标", live: "实时", buildings: "各建筑用能",
      items: "分项用电（本月）", rules: "空调与下班后用电（本月）", alarms: "告警",
      waste: "垃圾分类", edges: "采集终端",
      upload: "上传状态（市级能耗平台）", upload_building: "建筑", upload_last: "最近上传成功的时段",
      upload_backlog: "待上传时段", upload_error: "最近错误", upload_none: "尚未上传",
      upload_ok: "无",
      savings: "规则节约（估算）", savings_none: "本月尚无规则写入的节约记录", savings_rule: "规则",
      savings_writes: "次写入", savings_cost: "费用", savings_co2: "CO₂",
      savings_note: "估算：写入前的负荷保持到下一个上班时间（有上限）；方法见 docs/savings.md",
      ytd: "累计", projected: "年末预计", target: "目标", prorated: "按期目标",
      no_target: "本年度未设目标", no_data: "尚无数据", met: "达标", not_met: "未达标",
      points: "分", score: "考核得分", provisional: "预计（年度未结束）", final: "全年结果",
      insufficient: "数据不足，暂不预测", estimate: "预计",
      total_energy: "综合能耗", water: "用水", floor_area: "建筑面积", users: "用能人数",
      elapsed: "年度已过", data_since: "数据始于", profile: "折标系数",
      live_power: "实时功率", last_hour: "最近一小时", elec_today: "今日用电",
      water_today: "今日用水", today: "今日", month: "本月", power: "功率",
      cost_month: "本月能源费用", cost_none: "未配置价目", cost_partial: "部分用量无价目",
      no_buildings: "未配置建筑", no_power: "暂无实时功率",
      no_items: "未配置分项计量（子表带分项编码后在此显示）", share_of_main: "占总表",
      ac: "空调设定温度达标率", ac_none: "未接入空调", ac_idle: "本月空调未在制冷或制热模式运行",
      ac_units: "空调 {n} 台", ac_exempt: "{n} 台豁免", judged_h: "评判运行时长",
      ac_rule: "夏季不低于 {s} °C，冬季不高于 {w} °C",
      after_hours: "下班后及节假日用电", of_total: "占本月用电", working_hours: "工作时间",
      unknown_days: "天缺少调休日历数据",
      no_after: "本月尚无用电数据",
      alarms_active: "当前告警", alarms_none: "当前无告警", alarms_recent: "最近告警记录",
      notices: "告警通知", notice_raised: "待通知", notice_notified: "已通知",
      notice_acknowledged: "已确认", notice_muted: "已静音", notice_unrouted: "无通知路由",
      notice_short: "短时告警", by: "确认人",
      raised: "告警", cleared: "已解除", kind_leak: "疑似漏水", kind_lights_on: "下班未关灯",
      kind_bin_full: "垃圾桶已满", kind_actuation_failed: "控制执行失败",
      rule: "规则", flow: "流量", fill: "满溢度", hazardous: "有害垃圾",
      bins: "垃圾桶满溢度", bins_none: "尚无垃圾桶传感器上报", stale: "数据过旧",
      clearances: "今年清运", clearances_none: "今年尚无清运记录", times: "次",
      month_col: "月份", category: "类别", weight: "重量 kg",
      edges_none: "尚无采集终端连接", online: "在线", offline: "离线", unknown: "未知",
      last_seen: "最后通信", clock_state: "时钟", synced: "已同步", unsynced: "未同步",
      outbox: "待发送缓存", not_reported: "未上报", software: "软件",
      ingest: "MQTT", connected: "已连接", disconnected: "未连接", received: "收到消息",
      stored: "新存记录", duplicates: "重发去重", dead_letters: "拒收", store_errors: "存储失败",
      received_tip: "中心自启动以来收到的 MQTT 消息数（一条消息可含多条记录）",
      stored_tip: "新写入数据库的记录数（采样、事件、计量区间；同一区间的更新版本也算）",
      duplicates_tip: "已存储过的记录再次到达、被忽略的条数：终端断线重连后重发未确认的批次时出现，数据不会重复计算",
      dead_letters_tip: "格式错误或无法解析而被拒收、另行保存待查的消息和记录数",
      store_errors_tip: "写入数据库失败的次数；失败的批次不确认，终端会重发",
      counters_help: "这些数字的含义", counters_since: "自中心启动以来",
      ago_s: "{n} 秒前", ago_min: "{n} 分钟前", ago_h: "{n} 小时前",
      carbon: "碳排放", co2_month: "本月", co2_ytd: "本年累计", co2_per_m2: "单位面积",
      co2_per_person: "人均", co2_factors: "排放因子", co2_missing: "部分用量缺少排放因子，未计入",
      co2_from: "起", e_electricity: "电力", e_natural_gas: "天然气", e_heat: "热力",
      e_gasoline: "汽油", e_diesel: "柴油", e_raw_coal: "原煤", e_lpg: "液化石油气", e_steam: "蒸汽",
      compare: "同比与环比", cmp_figure: "指标", cmp_current: "本期", cmp_yoy: "同比",
      cmp_yoy_base: "上年同期", cmp_pop: "环比", cmp_pop_base: "上期",
      cmp_weather: "气候修正后", cmp_no: "—：对比期数据不全或缺失，不作比较",
      fyp: "“十四五”目标进度（对比 {y} 年同期）", fyp_target: "{t} 年目标 −{p}%",
      fyp_required: "本年应降", fyp_change: "较基准年", fyp_base: "基准年同期",
      fyp_on_track: "进度达标", fyp_behind: "进度落后", fyp_no_data: "基准年数据缺失",
      fyp_incomplete: "数据不全", fyp_zero_base: "基准为零",
      fyp_awaiting_emission_factors: "待配置排放因子"
    },
    en: {
      title: "Energy monitor", skip: "Skip to content", lang_button: "中文", live_status: "Live",
      lost: "Connection lost", loading: "Loading…",
      auth_title: "Sign-in token needed",
      auth_text: "Paste an access token below (made with greenguard central create-token, or " +
        "ask your administrator), or open a dashboard link ending in #token=….",
      auth_paste: "Access token", auth_use: "Use this token",
      auth_rejected: "The saved token was refused (expired or revoked). Open a new dashboard link.",
      auth_forget: "Forget the saved token",
      targets: "Annual targets", live: "Live", buildings: "Energy by building",
      items: "Electricity by 分项 item (this month)",
      rules: "AC and after-hours use (this month)", alarms: "Alarms",
      waste: "Waste sorting", edges: "Edge agents",
      upload: "Upload status (municipal energy platform)", upload_building: "Building",
      upload_last: "Last accepted period", upload_backlog: "Backlog (periods)",
      upload_error: "Last error", upload_none: "nothing accepted yet", upload_ok: "none",
      savings: "Rule savings (estimate)", savings_none: "No savings from rule writes this month yet",
      savings_rule: "Rule", savings_writes: "writes", savings_cost: "Cost", savings_co2: "CO₂",
      savings_note: "Estimate: the load before each write held until the next working start " +
        "(capped); method in docs/savings.md",
      ytd: "Year to date", projected: "Projected", target: "Target", prorated: "Pro-rated",
      no_target: "No target set for this year", no_data: "No data yet", met: "Met",
      not_met: "Not met", points: "pts", score: "Score", provisional: "Provisional (year not over)",
      insufficient: "Not enough data to project yet", estimate: "provisional",
      final: "Final", total_energy: "Total energy", water: "Water", floor_area: "Floor area",
      users: "Energy users", elapsed: "Year elapsed", data_since: "Data since",
      profile: "Coefficients", live_power: "Live power", last_hour: "Last hour",
      elec_today: "Electricity today", water_today: "Water today", today: "Today",
      cost_month: "Energy cost this month", cost_none: "No tariff configured",
      cost_partial: "some quantities unpriced",
      month: "This month", power: "Power", no_buildings: "No buildings configured",
      no_power: "No live power yet",
      no_items: "No 分项 sub-meters configured (sub-meters with an item code appear here)",
      share_of_main: "of main meters",
      ac: "AC setpoint compliance", ac_none: "No AC units connected",
      ac_idle: "No AC ran in a cooling or heating mode this month", ac_units: "AC units: {n}",
      ac_exempt: "{n} exempt", judged_h: "Judged running time",
      ac_rule: "summer not below {s} °C, winter not above {w} °C",
      after_hours: "After hours and days off", of_total: "of this month's electricity",
      working_hours: "Working hours", unknown_days: "days without 调休 calendar data",
      no_after: "No electricity recorded this month yet",
      alarms_active: "Active alarms", alarms_none: "No active alarms",
      notices: "Notifications", notice_raised: "Not yet notified", notice_notified: "Notified",
      notice_acknowledged: "Acknowledged", notice_muted: "Muted", notice_unrouted: "No route",
      notice_short: "Short alarm", by: "by",
      alarms_recent: "Recent alarm events", raised: "Raised", cleared: "Cleared",
      kind_leak: "Possible leak", kind_lights_on: "Lights left on", kind_bin_full: "Bin full",
      kind_actuation_failed: "Actuation failed", rule: "rule", flow: "flow", fill: "fill",
      hazardous: "hazardous", bins: "Bin fill levels", bins_none: "No bin sensors reporting yet",
      stale: "stale", clearances: "Clearances this year",
      clearances_none: "No clearances recorded this year", times: "",
      month_col: "Month", category: "Category", weight: "Weight kg",
      edges_none: "No edge has connected yet", online: "online", offline: "offline",
      unknown: "unknown", last_seen: "last seen", clock_state: "clock", synced: "synced",
      unsynced: "unsynced", outbox: "outbox", not_reported: "not reported",
      software: "software", ingest: "MQTT", connected: "connected",
      disconnected: "disconnected", received: "messages received",
      stored: "records stored", duplicates: "resent duplicates ignored",
      dead_letters: "refused", store_errors: "store failures",
      received_tip: "MQTT messages the central received since it started (a message can carry many records)",
      stored_tip: "Records newly written to the database (samples, events, intervals; a newer version of an interval counts too)",
      duplicates_tip: "Records that arrived again after they were already stored and were ignored: an edge resends unacknowledged batches after a reconnect; nothing is counted twice",
      dead_letters_tip: "Messages and records refused as malformed, kept aside for inspection",
      store_errors_tip: "Database writes that failed; the batch is not acknowledged, so the edge sends it again",
      counters_help: "What these numbers mean", counters_since: "since the central started",
      ago_s: "{n} s ago", ago_min: "{n} min ago", ago_h: "{n} h ago",
      carbon: "CO₂ emissions", co2_month: "This month", co2_ytd: "Year to date",
      co2_per_m2: "Per floor area", co2_per_person: "Per person", co2_factors: "Factors",
      co2_missing: "Some consumption has no emission factor and is not counted",
      co2_from: "from", e_electricity: "Electricity", e_natural_gas: "Natural gas",
      e_heat: "Heat", e_gasoline: "Gasoline", e_diesel: "Diesel", e_raw_coal: "Raw coal",
      e_lpg: "LPG", e_steam: "Steam",
      compare: "Year on year and period on period", cmp_figure: "Figure",
      cmp_current: "This period", cmp_yoy: "Year on year", cmp_yoy_base: "A year earlier",
      cmp_pop: "Period on period", cmp_pop_base: "Previous period",
      cmp_weather: "weather-adjusted", cmp_no: "—: the compared period lacks data; no comparison",
      fyp: "14th Five-Year targets (against the same days of {y})",
      fyp_target: "{t} target −{p}%", fyp_required: "required this year",
      fyp_change: "against base year", fyp_base: "base year, same days",
      fyp_on_track: "on track", fyp_behind: "behind", fyp_no_data: "no base-year data",
      fyp_incomplete: "incomplete data", fyp_zero_base: "base is zero",
      fyp_awaiting_emission_factors: "awaiting emission factors"
    }
  };

  function store(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key);
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, value);
    } catch (e) { /* storage disabled: works for this visit only */ }
    return null;
  }

  var lang = store("gg_lang") === "en" ? "en" : "zh";
  var token = takeToken();
  var view = null;
  var live = null;
  var renders = 0;
  var notices = null;  // open alarm episodes of the notifier (null: notifications off)
  var uploads = null;  // the platform uploader's status (null or configured false: hidden)
  var savings = null;  // …/savings of this month (central/savings.py): an estimate
  var comparisons = null;  // 同比 / 环比 / 14th FYP (…/comparisons), polled every 5 min
  var uploadsShown = "";  // its table as last rendered (unchanged: the DOM is left alone)

  function takeToken() {
    var m = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    if (m) {
      var given;
      try { given = decodeURIComponent(m[1]); } catch (e) { given = m[1]; }
      store("gg_token", given);
      var rest = window.location.hash.slice(1).split("&").filter(function (p) {
        return p.indexOf("token=") !== 0;
      }).join("&");
      history.replaceState(null, "", window.location.pathname + window.location.search +
        (rest ? "#" + rest : ""));
      return given || null;  // also when the browser refuses to store it
    }
    return store("gg_token");
  }

  function t(key, args) {
    var s = TEXT[lang][key];
    if (s === undefined) s = TEXT.zh[key] !== undefined ? TEXT.zh[key] : key;
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
  function pct(x) { return x === null || x === undefined ? "—" : num(x * 100, 1); }
  function ago(s) {
    if (s === null || s === undefined) return "—";
    if (s < 90) return t("ago_s", {n: Math.max(0, Math.round(s))});
    if (s < 5400) return t("ago_min", {n: Math.round(s / 60)});
    return t("ago_h", {n: Math.round(s / 3600)});
  }
  function localTime(ms) {
    var tz = view ? view.institution.timezone : undefined;
    try {
      return new Date(ms).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB",
        {timeZone: tz, hour12: false, month: "2-digit", day: "2-digit", hour: "2-digit",
         minute: "2-digit"});
    } catch (e) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); }
  }
  function figure(id, value, d, unit) {
    return '<b data-testid="' + id + '">' + num(value, d) + '</b>' +
      (unit ? ' <small>' + esc(unit) + '</small>' : '');
  }
  function empty(id, key) { return '<p class="empty" data-testid="' + id + '">' + esc(t(key)) + '</p>'; }
  function name(zh, en) { return lang === "zh" ? zh : en; }

  /* -- SVG ------------------------------------------------------------------------- */

  function polar(f) {
    var a = Math.PI * (1 - Math.max(0, Math.min(1, f)));
    return [60 + 48 * Math.cos(a), 62 - 48 * Math.sin(a)];
  }
  function arc(f0, f1, colour, width) {
    var p0 = polar(f0), p1 = polar(f1);
    return '<path d="M' + p0[0].toFixed(2) + ' ' + p0[1].toFixed(2) + ' A48 48 0 0 1 ' +
      p1[0].toFixed(2) + ' ' + p1[1].toFixed(2) + '" fill="none" stroke="' + colour +
      '" stroke-width="' + width + '" stroke-linecap="butt"/>';
  }
  /* A half-ring gauge: value `f` of the scale (0..1), an optional target tick. */
  function gauge(f, colour, tick, label) {
    var s = '<svg viewBox="0 0 120 70" role="img" aria-label="' + esc(label) + '"><title>' +
      esc(label) + '</title>' + arc(0, 1, "#e3e9e4", 12);
    if (f !== null && f > 0) s += arc(0, Math.min(1, f), colour, 12);
    if (tick !== null) {
      var a = polar(tick), b = [60 + (a[0] - 60) * 1.3, 62 + (a[1] - 62) * 1.3];
      var c = [60 + (a[0] - 60) * 0.7, 62 + (a[1] - 62) * 0.7];
      s += '<line x1="' + c[0].toFixed(2) + '" y1="' + c[1].toFixed(2) + '" x2="' +
        b[0].toFixed(2) + '" y2="' + b[1].toFixed(2) + '" stroke="#1d2a22" stroke-width="2.5"/>';
    }
    return s + '</svg>';
  }
  function bar(f, colour, label) {
    var w = Math.max(0, Math.min(1, f || 0)) * 100;
    return '<svg viewBox="0 0 100 14" preserveAspectRatio="none" role="img" aria-label="' +
      esc(label) + '"><rect width="100" height="14" rx="2" fill="#e3e9e4"/><rect width="' +
      w.toFixed(2) + '" height="14" rx="2" fill="' + colour + '"/></svg>';
  }
  function sparkline(series) {
    var pts = series.filter(function (p) { return p.power_w !== null; });
    if (!pts.length) return '<p class="empty" data-testid="sparkline-empty">' + esc(t("no_power")) + '</p>';
    var t0 = series[0].ts, t1 = series[series.length - 1].ts, span = Math.max(1, t1 - t0);
    var max = Math.max.apply(null, pts.map(function (p) { return p.power_w; }));
    var min = Math.min.apply(null, pts.map(function (p) { return p.power_w; }));
    var top = max > 0 ? max * 1.1 : 1;
    var path = "", area = "", open = false, last = null;
    series.forEach(function (p) {
      if (p.power_w === null) {
        if (open) area += "L" + last + " 60 Z ";
        open = false; return;
      }
      var x = ((p.ts - t0) / span * 300).toFixed(1), y = (58 - p.power_w / top * 54).toFixed(1);
      if (!open) { path += "M" + x + " " + y + " "; area += "M" + x + " 60 L" + x + " " + y + " "; }
      else { path += "L" + x + " " + y + " "; area += "L" + x + " " + y + " "; }
      open = true; last = x;
    });
    if (open) area += "L" + last + " 60 Z";
    var label = t("last_hour") + ": " + num(min / 1000, 1) + "–" + num(max / 1000, 1) + " kW";
    return '<svg class="spark" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" ' +
      'data-testid="sparkline" data-points="' + pts.length + '" aria-label="' + esc(label) + '">' +
      '<title>' + esc(label) + '</title><path d="' + area + '" fill="#cfe5d8"/><path d="' + path +
      '" fill="none" stroke="#1f6b43" stroke-width="2" vector-effect="non-scaling-stroke"/></svg>' +
      '<div class="note">' + esc(label) + '</div>';
  }

  /* -- sections -------------------------------------------------------------------- */

  var DIGITS = 3;
  function gauges(v) {
    var c = v.compliance, html = "";
    c.items.forEach(function (it) {
      var scale = it.target ? it.target * 1.5 : null;
      var f = scale && it.projected !== null ? it.projected / scale : null;
      var colour = it.met === true ? "#17703a" : (it.met === false ? "#b3261e" : "#8a958e");
      var verdict = it.status === "insufficient" ? t("insufficient") :
        it.met === null ? (it.target === null ? t("no_target") : t("no_data")) :
        (it.met ? t("met") : t("not_met")) + (it.status === "provisional" ? " · " + t("estimate") : "");
      var label = name(it.label_zh, it.label_en) + ": " + t("projected") + " " +
        num(it.projected, DIGITS) + " / " + t("target") + " " + num(it.target, DIGITS) + " " + it.unit;
      html += '<div class="gauge" data-testid="gauge-' + esc(it.key) + '">' +
        '<div class="label">' + esc(name(it.label_zh, it.label_en)) + '</div>' +
        gauge(f, colour, scale ? 1 / 1.5 : null, label) +
        '<div class="big">' + figure("gauge-" + it.key + "-ytd", it.ytd, DIGITS) + '</div>' +
        '<div class="sub">' + esc(it.unit) + ' · ' + esc(t("ytd")) + '</div>' +
        '<div class="sub">' + esc(t("projected")) + ' ' +
        figure("gauge-" + it.key + "-projected", it.projected, DIGITS) + ' · ' + esc(t("target")) +
        ' ' + figure("gauge-" + it.key + "-target", it.target, DIGITS) + '</div>' +
        '<span class="verdict ' + (it.met === null ? "unknown" : (it.met ? "ok" : "bad")) + '">' +
        esc(verdict) + ' · ' + figure("gauge-" + it.key + "-points", it.points, 1) + ' / ' +
        num(it.max_points, 1) + ' ' + esc(t("points")) + '</span></div>';
    });
    var sf = c.max_score ? c.score / c.max_score : 0;
    html += '<div class="gauge" data-testid="gauge-score"><div class="label">' + esc(t("score")) +
      '</div>' + gauge(sf, sf >= 0.999 ? "#17703a" : (sf > 0 ? "#8a4b00" : "#b3261e"), null,
        t("score") + " " + num(c.score, 1) + " / " + num(c.max_score, 0)) +
      '<div class="big">' + figure("score", c.score, 1) + ' <small>/ ' + num(c.max_score, 0) +
      '</small></div><div class="sub" data-testid="score-note">' +
      esc(c.score === null ? t("insufficient") : (c.provisional ? t("provisional") : t("final"))) +
      '</div></div>';
    return html;
  }
  function complianceNote(c) {
    return esc(t("total_energy")) + ' ' + figure("energy-kgce", c.energy_kgce, 1, "kgce") + ' · ' +
      esc(t("water")) + ' ' + figure("water-m3", c.water_m3, 1, "m³") + ' · ' + esc(t("floor_area")) +
      ' ' + num(c.floor_area_m2, 0) + ' m² · ' + esc(t("users")) + ' ' + num(c.energy_users, 0) +
      ' · ' + esc(t("elapsed")) + ' ' + num(c.fraction_elapsed * 100, 1) + '%' +
      (c.data_since ? ' · ' + esc(t("data_since")) + ' ' + esc(c.data_since.slice(0, 10)) : '') +
      ' · ' + esc(t("profile")) + ' ' + esc(c.profile_id) + '@' + esc(c.profile_version) +
      (c.coverage ? '<br><span data-testid="coverage">' +
        esc(lang === "zh" ? c.coverage.text_zh : c.coverage.text_en) + '</span>' : '');
  }
  function liveCard() {
    var src = live || view;
    var html = '<div class="label">' + esc(t("live_power")) + '</div><div class="big">' +
      figure("live-power", src && src.power_w !== null ? src.power_w / 1000 : null, 1, "kW") + '</div>';
    return html + (live ? sparkline(live.series) : "");
  }
  function buildings(v) {
    if (!v.buildings.length) return empty("buildings-empty", "no_buildings");
    var maxMonth = Math.max.apply(null, v.buildings.map(function (b) { return b.energy_kwh_month; }));
    var maxToday = Math.max.apply(null, v.buildings.map(function (b) { return b.energy_kwh_today; }));
    var power = {};
    if (live) live.buildings.forEach(function (b) { power[b.id] = b.power_w; });
    var html = '<div class="bars">';
    v.buildings.forEach(function (b) {
      var p = b.id in power ? power[b.id] : b.power_w;
      html += '<div class="name" data-testid="bld-' + esc(b.id) + '-name"><b>' + esc(b.name) +
        '</b><br><small>' + esc(t("power")) + ' ' + figure("bld-" + b.id + "-power",
        p === null ? null : p / 1000, 1, "kW") + '</small></div><div>' +
        bar(maxToday > 0 ? b.energy_kwh_today / maxToday : 0, "#2f7d55",
            b.name + " " + t("today") + " " + num(b.energy_kwh_today, 1) + " kWh") +
        bar(maxMonth > 0 ? b.energy_kwh_month / maxMonth : 0, "#7aa98c",
            b.name + " " + t("month") + " " + num(b.energy_kwh_month, 1) + " kWh") +
        '</div><div class="val">' + figure("bld-" + b.id + "-today", b.energy_kwh_today, 1, "kWh") +
        '<br>' + figure("bld-" + b.id + "-month", b.energy_kwh_month, 1, "kWh") + '</div>';
    });
    return html + '</div><div class="legend"><span class="sw a"></span>' + esc(t("today")) +
      '<span class="sw b"></span>' + esc(t("month")) + '</div>';
  }
  function costCard(c) {  // central/cost.py: null figures are "—", never 0
    var head = '<div class="label">' + esc(t("cost_month")) + '</div>';
    if (!c || !c.configured) return head + empty("cost-none", "cost_none");
    var e = c.electricity;
    return head + '<div class="big">' + figure("cost-month", c.total_yuan, 2, "元") + '</div>' +
      '<div class="sub">' + esc(t("month")) + ' ' + num(e.kwh, 1) + ' kWh · ' +
      figure("cost-yuan-per-kwh", e.yuan_per_kwh, 4, "元/kWh") +
      (c.complete ? '' : ' · ' + esc(t("cost_partial"))) + '</div>';
  }
  function items(v) {
    var list = v.month.items;
    if (!list.length) return empty("items-empty", "no_items");
    var max = Math.max.apply(null, list.map(function (i) { return i.kwh; }));
    var html = '<div class="bars">';
    list.forEach(function (i) {
      var label = name(i.label_zh, i.label_en);
      html += '<div class="name">' + esc(label) + ' <small>' + esc(i.code) + '</small></div>' +
        bar(max > 0 ? i.kwh / max : 0, "#2f7d55", label + " " + num(i.kwh, 1) + " kWh") +
        '<div class="val">' + figure("item-" + i.code, i.kwh, 1, "kWh") +
        (i.share !== null ? ' <small>' + pct(i.share) + '%</small>' : '') + '</div>';
    });
    return html + '</div><p class="note">' + esc(t("share_of_main")) + ' ' +
      num(v.month.electricity_kwh, 1) + ' kWh</p>';
  }
  function carbon(v) {
    // tCO₂ computed by the central from the stored quantities (central/carbon.py); a
    // period without data shows "—", never 0.
    var c = v.carbon;
    if (!c) return empty("carbon-empty", "no_data");
    var m = c.month, y = c.ytd, cell = function (id, key, value, d, unit) {
      return '<div><div class="label">' + esc(t(key)) + '</div><div class="big">' +
        figure(id, value, d, unit) + '</div></div>';
    };
    var factors = y.factors.map(function (f) {
      return t("e_" + f.energy) + " " + num(f.kg_co2_per_unit, 4) + " kgCO₂/" +
        f.unit.replace("m3", "m³") + " (" + name(f.region_zh, f.region_en) + ", " +
        (lang === "zh" ? f.valid_from + " " + t("co2_from") : t("co2_from") + " " + f.valid_from) + ")";
    });
    return '<div class="row">' + cell("co2-month", "co2_month", m.t_co2, 2, "tCO₂") +
      cell("co2-ytd", "co2_ytd", y.t_co2, 2, "tCO₂") +
      cell("co2-per-m2", "co2_per_m2", y.kg_co2_per_m2, 3, "kgCO₂/m²") +
      cell("co2-per-person", "co2_per_person", y.kg_co2_per_person, 2,
           lang === "zh" ? "kgCO₂/人" : "kgCO₂/person") + '</div>' +
      (y.complete && m.complete ? '' : '<p class="note" data-testid="co2-missing">' +
        esc(t("co2_missing")) + '</p>') +
      '<p class="note">' + esc(t("co2_factors")) + ': ' + esc(factors.join(" · ") || "—") +
      (y.coverage ? ' · ' + esc(lang === "zh" ? y.coverage.text_zh : y.coverage.text_en) : '') +
      '</p>';
  }
  function rules(v) {
    var ac = v.month.ac, ah = v.month.after_hours, html = '<div class="row">';
    var rule = t("ac_rule", {s: num(ac.summer_min_setpoint_c, 0), w: num(ac.winter_max_setpoint_c, 0)});
    if (!ac.units) {
      html += '<div><b>' + esc(t("ac")) + '</b>' + empty("ac-empty", "ac_none") + '</div>';
    } else if (ac.share === null) {
      html += '<div><b>' + esc(t("ac")) + '</b>' + empty("ac-idle", "ac_idle") + '<small>' +
        esc(t("ac_units", {n: ac.units})) + ' · ' + esc(rule) + '</small></div>';
    } else {
      html += gauge(ac.share, ac.share >= 0.95 ? "#17703a" : "#8a4b00", null,
        t("ac") + " " + pct(ac.share) + "%") + '<div><b>' + esc(t("ac")) + '</b><div class="big">' +
        figure("ac-share", ac.share * 100, 1, "%") + '</div><small>' +
        esc(t("ac_units", {n: ac.units})) + (ac.exempt_units ? ' (' +
        esc(t("ac_exempt", {n: ac.exempt_units})) + ')' : '') + ' · ' + esc(t("judged_h")) + ' ' + num(ac.judged_s / 3600, 1) + ' h · ' +
        esc(rule) + '</small></div>';
    }
    html += '</div><div class="row">';
    if (!ah.kwh) {
      html += '<div><b>' + esc(t("after_hours")) + '</b>' + empty("after-hours-empty", "no_after") + '</div>';
    } else {
      html += gauge(ah.share, ah.share > 0.3 ? "#8a4b00" : "#2f7d55", null,
        t("after_hours") + " " + pct(ah.share) + "%") + '<div><b>' + esc(t("after_hours")) +
        '</b><div class="big">' + figure("after-hours-kwh", ah.after_hours_kwh, 1, "kWh") +
        '</div><small>' + figure("after-hours-share", ah.share * 100, 1, "%") + ' ' +
        esc(t("of_total")) + ' (' + num(ah.kwh, 1) + ' kWh) · ' + esc(t("working_hours")) + ' ' +
        esc(ah.working_hours) + (ah.unknown_calendar_days ? ' · ' + ah.unknown_calendar_days +
        ' ' + esc(t("unknown_days")) : '') + '</small></div>';
    }
    return html + '</div>';
  }
  function alarmLine(a) {
    var d = a.data || {}, extra = [];
    if (a.rule) extra.push(t("rule") + " " + a.rule);
    if (d.flow !== undefined) extra.push(t("flow") + " " + d.flow);
    if (d.fill_pct !== undefined) extra.push(t("fill") + " " + num(d.fill_pct, 0) + "%");
    if (d.category !== undefined) extra.push(String(d.category));
    if (d.hazardous === true) extra.push(t("hazardous"));
    var kind = TEXT.zh["kind_" + a.kind] !== undefined ? t("kind_" + a.kind) : a.kind;
    return '<li data-testid="alarm" data-kind="' + esc(a.kind) + '"><span class="badge' +
      (a.state === "cleared" ? " cleared" : "") + '">' + esc(a.state === "cleared" ? t("cleared") :
      t("raised")) + '</span><b>' + esc(kind) + '</b><span>' + esc(a.edge) +
      (a.device ? '/' + esc(a.device) : '') + '</span><small>' + esc(localTime(a.ts)) +
      (extra.length ? ' · ' + esc(extra.join(" · ")) : '') + '</small></li>';
  }
  function alarms(v) {
    var html = '<h3 class="note">' + esc(t("alarms_active")) + ' (<span data-testid="alarms-count">' +
      v.alarms.active.length + '</span>)</h3>';
    html += v.alarms.active.length ? '<ul class="list" data-testid="alarms-active">' +
      v.alarms.active.map(alarmLine).join("") + '</ul>' : empty("alarms-empty", "alarms_none");
    if (v.alarms.recent.length) {
      html += '<details><summary>' + esc(t("alarms_recent")) + ' (' + v.alarms.recent.length +
        ')</summary><ul class="list">' + v.alarms.recent.map(function (a) {
          return alarmLine(a).replace('data-testid="alarm"', 'data-testid="alarm-recent"');
        }).join("") + '</ul></details>';
    }
    return html;
  }
  // Notification state of open alarms (docs/notifications.md): shown while there are any
  // (without notify.yaml the list is always empty); a failed poll retries quietly.
  function pollNotices(path) {
    get(path).then(function (list) {
      notices = list;
      renderNotices();
      setTimeout(function () { pollNotices(path); }, 10000);
    }, function () {
      setTimeout(function () { pollNotices(path); }, 30000);
    });
  }
  function renderNotices() {
    var box = $("notices");
    if (!box) {
      if (!notices || !notices.length) return;
      box = document.createElement("div");
      box.id = "notices";
      box.className = "panel";
      box.setAttribute("data-testid", "notices");
      $("alarms").parentNode.appendChild(box);
    }
    if (!notices || !notices.length) { box.hidden = true; return; }
    box.hidden = false;
    var html = '<h3 class="note">' + esc(t("notices")) + ' (' + notices.length + ')</h3>';
    html += '<ul class="list">' + notices.map(function (n) {
      var state = n.suppressed ? n.suppressed : n.state;
      var kind = TEXT.zh["kind_" + n.kind] !== undefined ? t("kind_" + n.kind) : n.kind;
      var place = [n.building, n.room].filter(Boolean).join(" ") || n.device;
      return '<li data-testid="notice" data-state="' + esc(state) + '"><span class="badge' +
        (state === "acknowledged" ? " cleared" : "") + '">' + esc(t("notice_" + state)) +
        '</span><b>' + esc(kind) + '</b><span>' + esc(place) + '</span><small>' +
        esc(localTime(n.raised_ms)) + (n.acked_by ? ' · ' + esc(t("by")) + ' ' +
        esc(n.acked_by) : '') + '</small></li>';
    }).join("") + '</ul>';
    box.innerHTML = html;
  }
  // 同比 / 环比 and the 14th FYP card (docs/comparisons.md): "—" where a side lacks data.
  // The last complete month; when it has no data at all, the last complete year.
  function pollComparisons(path) {
    get(path).then(function (c) {
      var none = c.current.types.every(function (x) { return x.covered_days === 0; });
      return none ? get(path + "?period=year") : c;
    }).then(function (c) {
      comparisons = c;
      renderComparisons();
      setTimeout(function () { pollComparisons(path); }, 300000);
    }, function () {
      setTimeout(function () { pollComparisons(path); }, 60000);
    });
  }
  function change(line, testid) {
    if (!line || line.change === null || line.change === undefined) {
      return '<span class="cmp-none" data-testid="' + testid + '" title="' +
        esc(line && line.reason ? name(line.reason_zh || line.reason, line.reason) : "") +
        '">—</span>';
    }
    var cls = line.change > 0 ? "up" : line.change < 0 ? "down" : "";
    var adj = line.change_weather_adjusted;
    return '<span class="cmp ' + cls + '" data-testid="' + testid + '">' + esc(line.arrow) +
      ' ' + (line.change > 0 ? "+" : "") + pct(line.change) + '%</span>' +
      (adj !== null && adj !== undefined ? '<br><small>' + esc(t("cmp_weather")) + ' ' +
        (adj > 0 ? "+" : "") + pct(adj) + '%</small>' : '');
  }
  function renderComparisons() {
    var section = $("compare-section");
    if (!section || !comparisons) return;
    section.hidden = false;
    var c = comparisons, d = {kgce_per_m2: 4, kgce_per_person: 4, water_m3_per_person: 4};
    var pop = {};
    c.period_on_period.lines.forEach(function (l) { pop[l.figure] = l; });
    var html = '<p class="note">' + esc(c.current.first_day) + ' – ' +
      esc(c.current.last_day) + '</p><div class="scroll"><table><thead><tr><th>' +
      esc(t("cmp_figure")) + '</th><th>' + esc(t("cmp_current")) + '</th><th>' +
      esc(t("cmp_yoy_base")) + '</th><th>' + esc(t("cmp_yoy")) + '</th><th>' +
      esc(t("cmp_pop_base")) + '</th><th>' + esc(t("cmp_pop")) + '</th></tr></thead><tbody>';
    c.year_on_year.lines.forEach(function (l) {
      var p = pop[l.figure], n = d[l.figure] || 2;
      html += '<tr data-testid="cmp-' + esc(l.figure) + '"><td>' + esc(name(l.label_zh, l.label_en)) +
        ' <small>' + esc(l.unit) + '</small></td><td>' + num(l.current, n) + '</td><td>' +
        num(l.previous, n) + '</td><td>' + change(l, "yoy-" + l.figure) + '</td><td>' +
        num(p ? p.previous : null, n) + '</td><td>' + change(p, "pop-" + l.figure) +
        '</td></tr>';
    });
    html += '</tbody></table></div><p class="note">' + esc(t("cmp_no")) + '</p>';
    $("compare").innerHTML = html;
    var f = c.targets;
    if (!f) { $("fyp").hidden = true; return; }
    $("fyp").hidden = false;
    var card = '<h3 class="note">' + esc(t("fyp", {y: f.base_year})) + '</h3><ul class="list">';
    f.lines.forEach(function (l) {
      card += '<li data-testid="fyp-' + esc(l.figure) + '" data-status="' + esc(l.status) +
        '"><b>' + esc(name(l.label_zh, l.label_en)) + '</b><span>' +
        esc(t("fyp_target", {t: f.target_year, p: l.target_pct})) + '</span><span>' +
        esc(t("fyp_base")) + ' ' + num(l.base_value, 4) + ' → ' + num(l.current_value, 4) +
        ' ' + esc(l.unit) + '</span><span>' + esc(t("fyp_change")) + ' ' +
        (l.change === null ? "—" : (l.change > 0 ? "+" : "") + pct(l.change) + '%') +
        ' · ' + esc(t("fyp_required")) + ' ' + pct(l.required_change) + '%</span>' +
        '<span class="badge' + (l.status === "on_track" ? " cleared" : "") + '">' +
        esc(t("fyp_" + l.status)) + '</span></li>';
    });
    $("fyp").innerHTML = card + '</ul>';
  }
  // 上传状态 (docs/platform-upload.md): the uploader's state file as the API reads it;
  // hidden while no uploader has run for the institution.
  function pollUploads(path) {
    get(path).then(function (status) {
      uploads = status;
      renderUploads();
      setTimeout(function () { pollUploads(path); }, 10000);
    }, function () {
      setTimeout(function () { pollUploads(path); }, 30000);
    });
  }
  // 规则节约（估算）: what the rules' audited writes saved this month (docs/savings.md).
  function pollSavings(inst) {
    var again = function (ms) { setTimeout(function () { pollSavings(inst); }, ms); };
    if (!view) { again(2000); return; }
    get("api/v1/institutions/" + encodeURIComponent(inst) + "/savings?period=" +
        String(view.today).slice(0, 7)).then(function (s) {
      savings = s;
      renderSavings();
      again(60000);
    }, function () { again(60000); });
  }
  function renderSavings() {
    var box = $("savings");
    if (!box || !savings) return;
    var rows = Object.keys(savings.per_rule);
    if (!rows.length) { box.innerHTML = empty("savings-empty", "savings_none"); return; }
    var html = '<div class="scroll"><table><thead><tr><th>' + esc(t("savings_rule")) +
      '</th><th>' + esc(t("savings_writes")) + '</th><th>kWh</th><th>kgce</th><th>' +
      esc(t("savings_cost")) + '</th><th>' + esc(t("savings_co2")) + ' kg</th></tr></thead><tbody>';
    rows.concat(["total"]).forEach(function (r) {
      var x = r === "total" ? savings.total : savings.per_rule[r];
      html += '<tr data-testid="savings-' + esc(r) + '"><td>' + esc(r) + '</td><td>' +
        num(x.writes, 0) + '</td><td>' + figure("savings-" + r + "-kwh", x.kwh, 1) + '</td><td>' +
        num(x.kgce, 2) + '</td><td>' + num(x.cost, 2) + '</td><td>' + num(x.co2_kg, 1) +
        '</td></tr>';
    });
    box.innerHTML = html + '</tbody></table></div><p class="note">' + esc(t("savings_note")) +
      '</p>';
  }
  function renderUploads() {
    var section = $("upload-section");
    if (!section || !uploads) return;
    section.setAttribute("data-configured", uploads.configured ? "true" : "false");
    if (!uploads.configured) { section.hidden = true; return; }
    section.hidden = false;
    var html = '<div class="scroll"><table><thead><tr><th>' + esc(t("upload_building")) +
      '</th><th>' + esc(t("upload_last")) + '</th><th>' + esc(t("upload_backlog")) +
      '</th><th>' + esc(t("upload_error")) + '</th></tr></thead><tbody>';
    uploads.buildings.forEach(function (b) {
      var err = b.last_error;
      html += '<tr data-testid="upload-' + esc(b.building) + '"><td>' + esc(b.building) +
        '</td><td data-testid="upload-' + esc(b.building) + '-last">' +
        esc(b.last_accepted === null ? t("upload_none") : localTime(b.last_accepted)) +
        '</td><td data-testid="upload-' + esc(b.building) + '-backlog">' + num(b.backlog, 0) +
        '</td><td data-testid="upload-' + esc(b.building) + '-error">' + (err ?
        '<span class="warn">' + esc(err.operation + " " + err.outcome) + '</span> <small>' +
        esc(localTime(err.ts)) + ' · ' + esc(err.detail) + '</small>' : esc(t("upload_ok"))) +
        '</td></tr>';
    });
    html += '</tbody></table></div>';
    if (html !== uploadsShown) { $("upload").innerHTML = html; uploadsShown = html; }
  }
  function waste(v) {
    var w = v.waste, html = '<b>' + esc(t("bins")) + '</b>';
    if (!w.bins.length) html += empty("bins-empty", "bins_none");
    else {
      html += '<div class="bars">';
      w.bins.forEach(function (b) {
        var f = b.fill_pct === null ? null : b.fill_pct / 100;  // null: no reading yet
        html += '<div class="name">' + esc(b.device) + '</div>' +
          bar(f, f >= 0.8 ? "#b3261e" : (f >= 0.6 ? "#8a4b00" : "#2f7d55"),
              b.device + " " + num(b.fill_pct, 0) + "%") +
          '<div class="val">' + figure("bin-" + b.device, b.fill_pct, 0, "%") +
          (b.stale ? ' <span class="warn">' + esc(t("stale")) + '</span>' : '') + '</div>';
      });
      html += '</div>';
    }
    html += '<p><b>' + esc(t("clearances")) + '</b> ' + figure("clearances-count", w.clearances, 0,
      t("times")) + (w.clearances ? ' · ' + figure("clearances-kg", w.weight_kg, 1, "kg") : '') + '</p>';
    if (!w.monthly.length) return html + empty("clearances-empty", "clearances_none");
    html += '<div class="scroll"><table><thead><tr><th>' + esc(t("month_col")) + '</th><th>' +
      esc(t("category")) + '</th><th>' + esc(t("weight")) + '</th></tr></thead><tbody>';
    w.monthly.forEach(function (m) {
      html += '<tr><td>' + esc(m.month) + '</td><td>' + esc(name(m.label_zh, m.label_en)) +
        '</td><td>' + num(m.weight_kg, 1) + '</td></tr>';
    });
    return html + '</tbody></table></div>';
  }
  function edges(v) {
    var html = "";
    if (!v.edges.length) html = empty("edges-empty", "edges_none");
    else {
      html = '<ul class="list">';
      v.edges.forEach(function (e) {
        // online: heard from lately; connected null: no birth or death seen yet
        var state = e.online ? "online" : (e.connected === null ? "unknown" : "offline");
        html += '<li data-testid="edge-' + esc(e.edge) + '"><span class="dot ' +
          (state === "online" ? "on" : (state === "offline" ? "off" : "")) + '"></span><b>' +
          esc(e.edge) + '</b><span data-testid="edge-' + esc(e.edge) + '-state">' + esc(t(state)) +
          '</span><small>' + esc(t("last_seen")) + ' ' + esc(ago(e.age_s)) + ' · ' +
          esc(t("clock_state")) + ' ' + esc(e.clock_synced === null ? "—" :
          t(e.clock_synced ? "synced" : "unsynced")) + ' · ' + esc(t("outbox")) + ' ' +
          (e.outbox_depth === null ? esc(t("not_reported")) : num(e.outbox_depth, 0)) +
          (e.software ? ' · ' + esc(t("software")) + ' ' + esc(e.software) : '') + '</small></li>';
      });
      html += '</ul>';
    }
    var i = v.ingest;
    if (i) {
      // Each counter says what it counts on hover (title) and the help page says it in full
      // (docs/dashboard.md, "Ingest counters").
      var counter = function (key, value) {
        return '<span class="counter" data-testid="ingest-' + key + '" title="' +
          esc(t(key + "_tip")) + '">' + esc(t(key)) + ' ' + num(value, 0) + '</span>';
      };
      html += '<p class="note" data-testid="ingest-counters">' + esc(t("ingest")) + ' ' +
        esc(t(i.connected ? "connected" : "disconnected")) + ' · ' + esc(t("counters_since")) +
        ': ' + counter("received", i.received) + ' · ' + counter("stored", i.stored_records) +
        ' · ' + counter("duplicates", i.duplicates) + ' · ' +
        counter("dead_letters", i.dead_letters) + ' · ' + counter("store_errors", i.store_errors) +
        ' · <a href="assets/counters.html" data-testid="ingest-help">' + esc(t("counters_help")) +
        '</a></p>';
    }
    return html;
  }

  /* -- page ------------------------------------------------------------------------ */

  function $(id) { return document.getElementById(id); }
  function statics() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    var button = $("lang");
    button.textContent = t("lang_button");
    button.lang = lang === "zh" ? "en" : "zh-CN";
    document.title = (view ? view.institution.name + " · " : "") + t("title");
  }
  function render() {
    statics();
    if (!view) return;
    $("name").textContent = view.institution.name;
    $("clock").textContent = String((live || view).local_time).replace("T", " ").slice(0, 19);
    $("year").textContent = view.compliance.year;
    $("gauges").innerHTML = gauges(view);
    $("compliance-note").innerHTML = complianceNote(view.compliance);
    $("live-card").innerHTML = liveCard();
    $("today-elec").innerHTML = '<div class="label">' + esc(t("elec_today")) +
      '</div><div class="big">' + figure("today-kwh", view.energy_kwh_today, 1, "kWh") + '</div>';
    $("today-water").innerHTML = '<div class="label">' + esc(t("water_today")) +
      '</div><div class="big">' + figure("today-water", view.water_m3_today, 2, "m³") + '</div>';
    $("month-cost").innerHTML = costCard(view.cost);
    $("carbon").innerHTML = carbon(view);
    $("buildings").innerHTML = buildings(view);
    $("items").innerHTML = items(view);
    $("rules").innerHTML = rules(view);
    var details = $("alarms").querySelector("details"), open = details ? details.open : false;
    $("alarms").innerHTML = alarms(view);
    details = $("alarms").querySelector("details");
    if (details) details.open = open;
    renderNotices();
    renderUploads();
    renderSavings();
    renderComparisons();
    $("waste").innerHTML = waste(view);
    $("edges").innerHTML = edges(view);
    stamp();
  }
  function renderLive() {
    if (!view) return;
    $("clock").textContent = String(live.local_time).replace("T", " ").slice(0, 19);
    $("live-card").innerHTML = liveCard();
    $("buildings").innerHTML = buildings(view);
    stamp();
  }
  function stamp() {
    renders += 1;
    var main = $("main");
    main.setAttribute("data-state", "ready");
    main.setAttribute("data-as-of", String(view.now));
    main.setAttribute("data-live-as-of", live ? String(live.now) : "");
    main.setAttribute("data-renders", String(renders));
  }
  function setStatus(key, error) {
    var s = $("status");
    // A live region re-announces any change: leave it alone while nothing changed.
    var code = lang === "zh" ? "zh-CN" : "en";
    if (s.getAttribute("data-key") === key && s.getAttribute("lang") === code &&
        (s.className === "error") === Boolean(error)) return;
    s.setAttribute("lang", code);
    s.textContent = t(key);
    s.className = error ? "error" : "";
    s.setAttribute("data-key", key);
  }
  function needAuth(rejected) {
    $("content").hidden = true;
    $("auth").hidden = false;
    $("auth-text").textContent = t(rejected ? "auth_rejected" : "auth_text");
    $("auth-text").setAttribute("data-i18n", rejected ? "auth_rejected" : "auth_text");
    $("forget").hidden = !rejected;
    $("main").setAttribute("data-state", "auth");
    setStatus("auth_title", true);
  }
  function get(path) {
    var headers = {Accept: "application/json"};
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path, {headers: headers, cache: "no-store", credentials: "omit"}).then(function (r) {
      if (r.status === 401 || r.status === 403) {
        var e = new Error("auth"); e.auth = true; throw e;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }
  function failed(e) {
    if (e && e.auth) { needAuth(Boolean(token)); return true; }
    setStatus("lost", true);
    return false;
  }
  function poll(path, every, apply) {
    function once() {
      get(path).then(function (data) {
        apply(data);
        $("auth").hidden = true;
        $("content").hidden = !view;
        setStatus("live_status", false);
        setTimeout(once, every);
      }, function (e) {
        if (!failed(e)) setTimeout(once, Math.min(30000, every * 2));
      });
    }
    once();
  }

  document.addEventListener("DOMContentLoaded", function () {
    statics();
    $("lang").addEventListener("click", function () {
      lang = lang === "zh" ? "en" : "zh";
      store("gg_lang", lang);
      render();
      if ($("main").getAttribute("data-state") === "auth") {
        needAuth($("auth-text").getAttribute("data-i18n") === "auth_rejected");
      } else if ($("status").getAttribute("data-key")) {
        setStatus($("status").getAttribute("data-key"), $("status").className === "error");
      }
    });
    // The sign-in box: a token pasted by hand (create-token prints one), same as #token=….
    $("token-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var given = $("token-input").value.trim();
      if (!given) return;
      $("token-input").value = "";
      store("gg_token", given);
      token = given;
      start();
    });
    $("forget").addEventListener("click", function () {
      store("gg_token", null);
      token = null;
      needAuth(false);
    });
    // A dashboard link opened in a tab that already shows the page changes only the hash.
    window.addEventListener("hashchange", function () {
      if (!/(?:^#|&)token=/.test(window.location.hash)) return;
      token = takeToken();
      if ($("main").getAttribute("data-state") === "auth") start();
    });
    start();
  });
  // The token decides which institutions the page may show: the one remembered in
  // gg_inst if the token still sees it, else the first.
  function start() {
    setStatus("loading", false);
    get("api/v1/institutions").then(function (list) {
      if (!list.length) { needAuth(true); return; }
      var chosen = list[0].id, kept = store("gg_inst");
      list.forEach(function (i) { if (i.id === kept) chosen = kept; });
      store("gg_inst", chosen);
      var base = "api/v1/institutions/" + encodeURIComponent(chosen) + "/dashboard";
      poll(base, 10000, function (d) { view = d; render(); });
      poll(base + "/live", 2000, function (d) { live = d; renderLive(); });
      pollNotices("api/v1/institutions/" + encodeURIComponent(chosen) +
        "/notify/episodes?open_only=true");
      pollUploads("api/v1/institutions/" + encodeURIComponent(chosen) + "/upload?limit=1");
      pollSavings(chosen);
      pollComparisons("api/v1/institutions/" + encodeURIComponent(chosen) + "/comparisons");
    }, function (e) {
      if (!failed(e)) setTimeout(start, 5000);
    });
  }
})();
