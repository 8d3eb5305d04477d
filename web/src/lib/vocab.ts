// dispatch's fixed vocabularies (dispatch/README.md: kinds, tiers, states).
export const KINDS = [
  'rodent', 'suspectedPoisoning', 'adverseDrugReaction', 'noChefHat', 'noMask', 'noGloves', 'noUniform',
  'smoking', 'phoneUse', 'uncoveredBin', 'personAbsent', 'cameraOffline', 'cameraTampered', 'complaint', 'other',
] as const
export const TIERS = ['immediate', 'deadline', 'routine'] as const
export const STATES = [
  'new', 'triaged', 'dispatched', 'acknowledged', 'enRoute', 'onScene', 'resolved', 'closed', 'rejected',
] as const

/** Still being worked: not closed and not rejected. */
export function isOpen(state: string): boolean {
  return state !== 'closed' && state !== 'rejected'
}
