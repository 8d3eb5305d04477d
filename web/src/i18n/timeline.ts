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
    // consult rooms and the voice channel (dispatch rooms::timeline)
    roomOpened: '已开启会商室“{title}”',
    roomClosed: '会商室“{title}”已关闭',
    roomJoined: '{who} 加入会商室“{title}”',
    roomGuestJoined: '受邀专家 {who} 加入会商室“{title}”',
    roomCameraShared: '会商室“{title}”共享了摄像头 {camera} 的实时画面',
    roomCameraStopped: '会商室“{title}”停止共享摄像头',
    roomClipShared: '会商室“{title}”播放了证据片段 {clip}',
    roomClipStopped: '会商室“{title}”停止播放证据片段',
    voiceOpened: '已开启事件对讲频道',
    voiceJoined: '{who} 加入对讲频道',
  },
  // what a voice recording was (voiceRecorded)
  voiceKind: { talk: '喊话', broadcast: '广播', ptt: '对讲', room: '会商' },
  // pieces some notes add
  part: {
    drill: '（演练 {exercise}）',
    bothDirections: '双向（左声道指挥中心，右声道现场）',
    operatorOnly: '仅指挥中心一方（现场无声音）',
    // a push-to-talk transmission (voiceRecorded, kind ptt): half-duplex, one talker each
    voiceChannel: '事件对讲频道',
    talkerOnly: '发言人一方（对讲为半双工，每次发言单独录音）',
    // a consult room recorded on request (voiceRecorded, kind room)
    consultRoom: '会商室“{title}”',
    roomMixed: '全部参会人混音（仅声音）',
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
    // consult rooms and the voice channel (dispatch rooms::timeline)
    roomOpened: 'consult room “{title}” opened',
    roomClosed: 'consult room “{title}” closed',
    roomJoined: '{who} joined consult room “{title}”',
    roomGuestJoined: 'invited expert {who} joined consult room “{title}”',
    roomCameraShared: 'camera {camera} shared live into consult room “{title}”',
    roomCameraStopped: 'camera sharing stopped in consult room “{title}”',
    roomClipShared: 'evidence clip {clip} played in consult room “{title}”',
    roomClipStopped: 'evidence clip stopped in consult room “{title}”',
    voiceOpened: 'the incident voice channel was opened',
    voiceJoined: '{who} joined the voice channel',
  },
  // what a voice recording was (voiceRecorded)
  voiceKind: { talk: 'Talk-down', broadcast: 'Broadcast', ptt: 'Push-to-talk', room: 'Consult room' },
  part: {
    drill: ' (drill {exercise})',
    bothDirections: 'both directions (left: command center, right: premises)',
    operatorOnly: 'command center only (no sound from the premises)',
    // a push-to-talk transmission (voiceRecorded, kind ptt): half-duplex, one talker each
    voiceChannel: 'the incident voice channel',
    talkerOnly: 'the talker only (push-to-talk is half-duplex: each transmission is its own recording)',
    // a consult room recorded on request (voiceRecorded, kind room)
    consultRoom: 'consult room “{title}”',
    roomMixed: 'every participant mixed (audio only)',
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
