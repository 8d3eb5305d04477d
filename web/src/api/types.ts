// The shapes dispatch answers with (dispatch/README.md, API table). Only what the apps read.

export interface User {
  id: string
  username: string
  displayName: string
  role: string
  scopeTowns: string[] | null
  teamId: string | null
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

export interface TimelineEntry {
  seq: number
  at: string
  actor: string
  role: string | null
  action: string
  fromState: string | null
  toState: string | null
  note: string
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
  next: string[]
}
