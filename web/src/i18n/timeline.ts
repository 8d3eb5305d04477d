// Timeline notes in both languages (issue 6). dispatch writes its own notes as a code and
// parameters (`noteCode`, `noteParams`; the list is dispatch's incident::note::CODES, published as
// the enum of TimelineEntry.noteCode in docs/reference/openapi.json) beside the English `note`;
// src/lib/timeline.ts fills these texts in. test/timeline.test.mjs checks that every code has both.
// (No '|' or '@' in the texts: vue-i18n reads them as plural and link marks.)
const zhCN = {
  note: {
    opened: '{source}报告，级别：{tier}',
    repeat: '第 {n} 次报告（{source}）',
    severitySuggested: '建议事件等级：{level}（病例 {cases}，死亡 {deaths}）',
    routedToTeam: '已分派给{team}（{at} {town}{grid}值班）',
    routedToTown: '{at} {town}{grid}无值班组，由镇街处理',
    notifiedTeam: '已通知{team}',
    notifiedTownOfficers: '无值班组：已通知{town}镇街负责人{users}',
    escalatedTownOfficers: '已升级至{town}镇街负责人{users}',
    escalatedSupervisors: '已升级至区局值班领导{users}',
    clockAtRisk: '{clock}时限即将到期：剩余 {left}，{due} 到期',
    clockOverdue: '{clock}时限已超时 {over}（应于 {due} 完成）',
    cameraOnline: '摄像头 {camera} 已恢复在线',
    recheckRequested: '已请求摄像头 {camera} 复检 {secs} 秒',
    recheckPassed: '摄像头复检：整改到位',
    recheckPassedStays: '摄像头复检：整改到位；事件仍为“{state}”',
    recheckFailed: '摄像头复检失败（{code}）：{message}',
    recheckTimedOut: '边缘设备 {edge} 未在时限内回复摄像头复检',
    falseAlarm: '误报：{reason}',
    endex: '演练结束 ENDEX（{exercise}）：升级和时限已停止',
    voiceRecorded: '{kind}已录音：{talker} → {cameras}，时长 {secs}，{directions}',
  },
  // what a voice recording was (voiceRecorded)
  voiceKind: { talk: '喊话', broadcast: '广播', ptt: '对讲' },
  // pieces some notes add
  part: {
    drill: '（演练 {exercise}）',
    bothDirections: '双向（左声道指挥中心，右声道现场）',
    operatorOnly: '仅指挥中心一方（现场无声音）',
    said: '：{text}',
    remark: '；{text}',
    grid: '，网格 {grid}',
    users: '（{names}）',
    nobody: '（无人登记，已发至值班台）',
    participants: '；仅发给参演人员：{names}',
    then: '；{text}',
    unknown: '未知',
    h: '小时',
    min: '分钟',
    s: '秒',
  },
}

const enUS: typeof zhCN = {
  note: {
    opened: '{source} report, tier {tier}',
    repeat: 'report {n} ({source})',
    severitySuggested: 'suggested severity {level} ({cases} cases, {deaths} deaths)',
    routedToTeam: 'routed to team {team} (on duty in {town}{grid} at {at})',
    routedToTown: 'no team on duty in {town}{grid} at {at}; routed to the town itself',
    notifiedTeam: 'notified team {team}',
    notifiedTownOfficers: 'no team on duty: notified the town officers of {town}{users}',
    escalatedTownOfficers: 'escalated to the town officers of {town}{users}',
    escalatedSupervisors: 'escalated to the district supervisors{users}',
    clockAtRisk: '{clock} clock at risk: {left} left, due {due}',
    clockOverdue: '{clock} clock overdue by {over}, was due {due}',
    cameraOnline: 'camera {camera} is back online',
    recheckRequested: 'camera {camera} to be watched for {secs} s',
    recheckPassed: 'the camera re-check found the rule kept',
    recheckPassedStays: 'the camera re-check found the rule kept; the incident stays {state}',
    recheckFailed: 'the camera re-check failed ({code}): {message}',
    recheckTimedOut: 'edge {edge} did not answer the camera re-check in time',
    falseAlarm: 'false alarm: {reason}',
    endex: 'ENDEX ({exercise}): escalation and clocks stopped',
    voiceRecorded: '{kind} recorded: {talker} to {cameras}, {secs}, {directions}',
  },
  // what a voice recording was (voiceRecorded)
  voiceKind: { talk: 'Talk-down', broadcast: 'Broadcast', ptt: 'Push-to-talk' },
  part: {
    drill: ' (drill {exercise})',
    bothDirections: 'both directions (left: command center, right: premises)',
    operatorOnly: 'command center only (no sound from the premises)',
    said: ': {text}',
    remark: '; {text}',
    grid: ', grid {grid}',
    users: ' ({names})',
    nobody: ' (nobody registered; sent to the duty desk)',
    participants: '; participants only: {names}',
    then: '; {text}',
    unknown: 'unknown',
    h: 'h',
    min: 'min',
    s: 's',
  },
}

export const timelineTexts = { 'zh-CN': zhCN, 'en-US': enUS }
