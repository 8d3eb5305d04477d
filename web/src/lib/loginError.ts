// Which message a failed login shows: one per failure code of POST /api/session.
import type { ApiError } from '../api/client'

export interface LoginProblem {
  key: 'login.failed' | 'login.lockedOut' | 'login.totpRequired' | 'login.unreachable' | 'login.other'
  /** seconds to wait (locked out) */
  secs?: number
  needTotp?: boolean
}

export function loginProblem(e: ApiError): LoginProblem {
  switch (e.code) {
    case 'login_failed':
      return { key: 'login.failed' }
    case 'login_throttled':
      return { key: 'login.lockedOut', secs: e.retryAfter ?? undefined }
    case 'totp_required':
      return { key: 'login.totpRequired', needTotp: true }
    case 'network':
      return { key: 'login.unreachable' }
    default:
      return { key: 'login.other' }
  }
}
