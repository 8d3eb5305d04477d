// Every note code dispatch writes on a timeline (its incident::note::CODES, published as the enum
// of TimelineEntry.noteCode in docs/reference/openapi.json) has its words in both languages, and
// the apps say a coded note in the UI's language; older rows and people's words stay as written.
import test from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { timelineTexts } from '../.unit/i18n/timeline.js'
import { noteText } from '../.unit/lib/timeline.js'

const openapi = JSON.parse(fs.readFileSync(new URL('../../docs/reference/openapi.json', import.meta.url), 'utf8'))
const serverCodes = openapi.components.schemas.TimelineEntry.properties.noteCode.enum

test('the OpenAPI document lists the timeline’s note codes', () => {
  assert.ok(Array.isArray(serverCodes) && serverCodes.length >= 15, `TimelineEntry.noteCode.enum: ${serverCodes}`)
})

for (const locale of ['zh-CN', 'en-US']) {
  test(`every timeline note code has a ${locale} text`, () => {
    const notes = timelineTexts[locale].note
    const missing = serverCodes.filter((c) => !(typeof notes[c] === 'string' && notes[c].trim()))
    assert.deepEqual(missing, [], `add them to web/src/i18n/timeline.ts (${locale})`)
  })
  test(`the ${locale} timeline texts use no vue-i18n link or plural marks`, () => {
    const all = [...Object.values(timelineTexts[locale].note), ...Object.values(timelineTexts[locale].part)]
    assert.deepEqual(all.filter((s) => /[|@$]/.test(s)), [])
  })
}

test('the zh-CN note texts are Chinese', () => {
  const english = Object.entries(timelineTexts['zh-CN'].note).filter(([, text]) => !/[\u4e00-\u9fff]/.test(text))
  assert.deepEqual(english, [])
})

/** vue-i18n's t and te over one locale's messages, enough for named interpolation. */
function words(locale) {
  const messages = {
    timeline: timelineTexts[locale],
    source: { hotline: locale === 'zh-CN' ? '热线' : 'Hotline', detection: locale === 'zh-CN' ? '智能识别' : 'Detection' },
    tier: { immediate: locale === 'zh-CN' ? '紧急' : 'Immediate' },
    clock: { ack: locale === 'zh-CN' ? '接单' : 'Ack' },
    state: { acknowledged: locale === 'zh-CN' ? '已接单' : 'Accepted' },
  }
  const find = (key) => key.split('.').reduce((o, k) => (o == null ? undefined : o[k]), messages)
  return {
    te: (key) => typeof find(key) === 'string',
    t: (key, p = {}) => find(key).replace(/\{(\w+)\}/g, (_, k) => String(p[k] ?? '')),
    time: (iso) => `T(${iso})`,
    town: (id) => (id === 'zhaitang' ? (locale === 'zh-CN' ? '斋堂镇' : 'Zhaitang') : id),
  }
}

test('a coded note is said in the UI’s language with its values in the UI’s words', () => {
  const routed = { note: 'routed to team A (on duty in zhaitang at …)', noteCode: 'routedToTeam', noteParams: { team: '斋堂镇全天组', town: 'zhaitang', grid: null, at: '2026-11-24T08:00:00Z' } }
  assert.equal(noteText(routed, words('zh-CN')), '已分派给斋堂镇全天组（T(2026-11-24T08:00:00Z) 斋堂镇值班）')
  assert.equal(noteText(routed, words('en-US')), 'routed to team 斋堂镇全天组 (on duty in Zhaitang at T(2026-11-24T08:00:00Z))')
  const opened = { note: 'hotline 12315 report, tier immediate, DRILL (exercise r1): 腹泻', noteCode: 'opened', noteParams: { source: 'hotline', hotline: '12315', tier: 'immediate', exercise: 'r1', description: '腹泻' } }
  assert.equal(noteText(opened, words('zh-CN')), '热线 12315报告，级别：紧急（演练 r1）：腹泻')
  assert.equal(noteText(opened, words('en-US')), 'Hotline 12315 report, tier Immediate (drill r1): 腹泻')
})

test('a detection’s description in an opening note is said in the UI’s words too', () => {
  const w = words('zh-CN')
  const t = (key, p = {}) => (key === 'describe.detection' ? `摄像头 ${p.camera}：${p.kind}` : key === 'kind.rodent' ? '发现老鼠' : w.t(key, p))
  const opened = { note: '…', noteCode: 'opened', noteParams: { source: 'detection', tier: 'immediate', description: 'rodent seen by camera k1 (confidence 0.84, model m 1)' } }
  assert.equal(noteText(opened, { ...w, t }), '智能识别报告，级别：紧急：摄像头 k1：发现老鼠')
})

test('a clock note says whom it reached, and an empty list as nobody registered', () => {
  const clock = {
    note: '…',
    noteCode: 'clockOverdue',
    noteParams: { clock: 'ack', secs: 3660, dueAt: '2026-11-24T08:05:00Z', then: { code: 'escalatedSupervisors', params: { users: [] } } },
  }
  assert.equal(noteText(clock, words('en-US')), 'Ack clock overdue by 1 h 1 min, was due T(2026-11-24T08:05:00Z); escalated to the district supervisors (nobody registered; sent to the duty desk)')
  assert.equal(noteText(clock, words('zh-CN')), '接单时限已超时 1 小时 1 分钟（应于 T(2026-11-24T08:05:00Z) 完成）；已升级至区局值班领导（无人登记，已发至值班台）')
})

test('a push-to-talk recording names the voice channel and says it holds one talker', () => {
  const ptt = { note: '…', noteCode: 'voiceRecorded', noteParams: { kind: 'ptt', talker: '李四', cameras: 'voice-0190', secs: 4, premises: false } }
  assert.equal(noteText(ptt, words('en-US')), 'Push-to-talk recorded: 李四 to the incident voice channel, 4 s, the talker only (push-to-talk is half-duplex: each transmission is its own recording)')
  assert.equal(noteText(ptt, words('zh-CN')), '对讲已录音：李四 → 事件对讲频道，时长 4 秒，发言人一方（对讲为半双工，每次发言单独录音）')
})

test('a consult room recording names the room and says every participant is mixed in', () => {
  const room = { note: '…', noteCode: 'voiceRecorded', noteParams: { kind: 'room', talker: '陈静', cameras: 'room-1', secs: 65, premises: false, title: '专家会商' } }
  assert.equal(noteText(room, words('en-US')), 'Consult room recorded: 陈静 to consult room “专家会商”, 1 min 5 s, every participant mixed (audio only)')
  assert.equal(noteText(room, words('zh-CN')), '会商已录音：陈静 → 会商室“专家会商”，时长 1 分钟 5 秒，全部参会人混音（仅声音）')
})

test('older rows, people’s words and codes this build does not know are shown as stored', () => {
  assert.equal(noteText({ note: 'routed to team A', noteCode: null, noteParams: {} }, words('zh-CN')), 'routed to team A')
  assert.equal(noteText({ note: '店主已整改' }, words('en-US')), '店主已整改')
  assert.equal(noteText({ note: 'a brand new thing', noteCode: 'brandNew', noteParams: {} }, words('zh-CN')), 'a brand new thing')
  const rejected = { note: 'false alarm: 猫; 已核实', noteCode: 'falseAlarm', noteParams: { reason: '猫', note: '已核实' } }
  assert.equal(noteText(rejected, words('zh-CN')), '误报：猫；已核实')
})
