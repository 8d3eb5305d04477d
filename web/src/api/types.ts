// The shapes dispatch answers with (dispatch/README.md, API table). Only what the apps read.

export interface User {
  id: string
  username: string
  displayName: string
  role: string
  scopeTowns: string[] | null
  teamId: string | null
  phone?: string
  disabled?: boolean
  totpEnabled: boolean
}

export interface Session {
  user: User
  csrfToken: string
}

export interface Town {
  id: string
  nameZh: string
  nameEn: string
  kind: string
  lat: number | null
  lon: number | null
}

export interface Page<T> {
  items: T[]
  total: number
  page: number
  perPage: number
}

export interface Clock {
  id: string
  kind: string
  startedAt: string
  atRiskAt: string | null
  dueAt: string
  stoppedAt: string | null
  state: string
  workingDays?: number | null
}

export interface Incident {
  id: string
  premisesId: string | null
  premisesName: string | null
  address: string
  townId: string
  kind: string
  tier: string
  suggestedSeverity: string | null
  state: string
  source: string
  hotline: string | null
  description: string
  caseCount: number | null
  deaths: number | null
  exercise: string | null
  openedAt: string
  lastReportAt: string
  reportCount: number
  routedTeamId: string | null
  routedTeamName: string | null
  clock?: Clock | null
}

/** A talk or broadcast recording of an incident (POST /api/incidents/{id}/voice-recordings). */
export interface VoiceRecording {
  sha256: string
  size: number
  contentType: string
  kind: 'talk' | 'broadcast' | 'ptt'
  talkerName: string
  node: string
  cameras: string[]
  incidentId: string | null
  broadcastId: string | null
  startedAt: string
  endedAt: string
  /** which sides carry sound: center (left channel), premises (right channel) */
  directions: string[]
  premisesNote: string | null
  /** the gateway URL, token included, until `expiresAt` */
  url: string
}
export interface VoiceRecordings {
  items: VoiceRecording[]
  expiresAt: string | null
}

export interface TimelineEntry {
  seq: number
  at: string
  actor: string
  role: string | null
  action: string
  fromState: string | null
  toState: string | null
  /** in English; show `noteCode` in the UI's language when there is one (src/lib/timeline.ts) */
  note: string
  noteCode: string | null
  noteParams: Record<string, unknown>
  lat: number | null
  lon: number | null
  refs: Record<string, unknown>
}

export interface LinkedEvent {
  eventId: string
  edgeId: string
  cameraId: string
  type: string
  phase: string | null
  at: string
  snapshot: Record<string, unknown> | null
  clip: Record<string, unknown> | null
}

export interface IncidentDetail extends Incident {
  timeline: TimelineEntry[]
  events: LinkedEvent[]
  next: string[]
  clocks: Clock[]
  photos: { sha256: string; [k: string]: unknown }[]
  pendingEscalation: { step: number; target: string; dueAt: string } | null
}

export interface Premises {
  id: string
  name: string
  licenceNo: string | null
  kind: string
  address: string
  townId: string
  riskGrade: string | null
  personInCharge: string | null
  phone: string | null
  lat: number | null
  lon: number | null
}

export interface Camera {
  id: string
  premisesId: string
  premisesName: string
  townId: string
  name: string
  /** from the edge's latest state; null when nothing reports on it (a pull camera) */
  online: boolean | null
  edgeId: string | null
  /** the camera (or its edge box's speaker) can play talk-down audio */
  talk: boolean
}

export interface FieldIncident {
  id: string
  kind: string
  tier: string
  state: string
  source: string
  description: string
  townId: string
  openedAt: string
  lastReportAt: string
  routedTeamName: string | null
  premisesId: string | null
  premisesName: string | null
  address: string
  lat: number | null
  lon: number | null
  personInCharge: string | null
  phone: string | null
  /** the premises' cameras, which the field user may watch while the incident is theirs */
  cameras: { id: string; name: string }[]
  next: string[]
}

// ---- the admin screens

/** A camera as `GET /api/cameras` lists it (never its credentials). */
export interface RegistryCamera {
  id: string
  premisesId: string
  townId: string
  name: string
  source: 'edge' | 'pull'
  edgeId: string | null
  mainStream: string
  subStream: string | null
  talk: boolean
  /** where talk audio plays: the camera's own speaker (ONVIF backchannel) or its edge box's speaker */
  talkOutput: 'backchannel' | 'speaker'
  hasCredentials: boolean
}

export interface Edge {
  id: string
  premisesId: string
  premisesName: string
  townId: string
  enrolledAt: string | null
  codeExpiresAt: string | null
  publicKey: string | null
  online: boolean | null
  lastReportAt: string | null
}

export interface EdgeWithCode {
  edge: Edge
  enrolmentCode: string
  codeExpiresAt: string
}

export interface Shift {
  teamId?: string
  townId?: string
  weekdays: number
  starts: string
  ends: string
}

export interface RosterOverride {
  startsAt: string
  endsAt: string
  reason: string
}

export interface Team {
  id: string
  townId: string
  name: string
  phone: string
  onDuty: boolean
  shifts: Shift[]
  overrides: RosterOverride[]
}

export interface EscalationPolicy {
  tier: string
  /** `config` (dispatch's [escalation]) or `admin` (set through the API) */
  source: 'config' | 'admin'
  updatedAt: string | null
  steps: Array<{ step: 'notify' | 'wait' | 'repeat'; target?: string; secs?: number; from_step?: number; times?: number }>
  schedule: Array<{ afterSecs: number; target: string }>
}

// ---- the dashboard's statistics (GET /api/stats/incidents)

/** Seconds from an incident's opening to a step, over the incidents that took it. */
export interface StatsTiming {
  count: number
  medianSecs: number | null
  p90Secs: number | null
}

export interface StatsFigures {
  incidents: number
  ack: StatsTiming
  arrive: StatsTiming
  resolve: StatsTiming
  triaged: number
  rejected: number
  falseAlarmRate: number | null
  resolved: number
  rectified: number
  rectificationRate: number | null
  overdueClocks: number
}

export interface IncidentStats {
  from: string
  to: string
  exercise: boolean
  total: StatsFigures
  byTown: (StatsFigures & { townId: string; nameZh: string; nameEn: string })[]
  byKind: (StatsFigures & { kind: string })[]
}

/** A voice message for automatic warnings (GET /api/voice-messages). */
export interface VoiceMessage {
  id: string
  name: string
  /** spoken by espeak-ng; null for a recording */
  text: string | null
  sha256: string | null
  durationMs: number | null
  updatedAt: string
}

/** One automatic voice warning rule (GET/PUT /api/warning-rules). */
export interface WarningRule {
  premisesKind: string
  kind: string
  messageId: string
  from: string | null
  to: string | null
}
