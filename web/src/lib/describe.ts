// An incident's description in the UI's language. People write hotline and manual descriptions in
// their own words (shown as written); dispatch writes a detection's description itself, in English
// ("rodent seen by camera k1 (confidence 0.84, model rodent-mog2 0.1.0)"): that one is read back
// into its parts and said in the UI's words. Plain in, plain out (unit tested without Vue).

type T = (key: string, params?: Record<string, unknown>) => string

const DETECTION = /^(\S+) seen by camera (\S+) \(confidence ([\d.]+), model (.+)\)$/

export function describe(incident: { source: string; description: string | null }, t: T): string {
  const text = incident.description ?? ''
  const m = incident.source === 'detection' ? DETECTION.exec(text) : null
  if (!m) return text
  const [, kind, camera, confidence, model] = m
  return t('describe.detection', { kind: t(`kind.${kind}`), camera, confidence: Math.round(Number(confidence) * 100), model })
}

/** A timeline entry's note in the UI's language: the edge's automatic voice warning is written by
 *  dispatch as codes and ids (`refs`), worded here; any other entry's note is shown as written. */
export function timelineNote(entry: { action: string; note: string; refs: Record<string, unknown> }, t: T): string {
  const r = entry.refs ?? {}
  const message = String(r.messageName ?? r.message ?? '')
  const output = r.output ? t(`describe.output.${String(r.output)}`) : ''
  if (entry.action === 'voiceWarning') return t('describe.voiceWarning', { message, camera: r.cameraId, output })
  if (entry.action === 'voiceWarningFailed') {
    const code = String(r.code ?? 'internal')
    const known = ['unsupported', 'busy', 'cameraOffline', 'unknownMessage', 'unknownCamera']
    const reason = t(`describe.warningCode.${known.includes(code) ? code : 'internal'}`)
    return t('describe.voiceWarningFailed', { message, camera: r.cameraId, reason })
  }
  return entry.note
}
