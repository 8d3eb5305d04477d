import { defineStore } from 'pinia'
import { ref } from 'vue'
import { ApiError, api, setCsrfToken } from '../api/client'
import type { Session, Town, User } from '../api/types'

export const useSession = defineStore('session', () => {
  const user = ref<User | null>(null)
  const towns = ref<Town[]>([])
  const checked = ref(false)

  async function loadTowns(): Promise<void> {
    towns.value = await api.get<Town[]>('/api/towns')
  }

  /** Picks up an existing session (cookie); false when there is none. */
  async function restore(): Promise<boolean> {
    try {
      const s = await api.get<Session>('/api/session')
      user.value = s.user
      setCsrfToken(s.csrfToken)
      await loadTowns()
      return true
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return false
      throw e
    } finally {
      checked.value = true
    }
  }

  async function login(username: string, password: string, totp?: string): Promise<void> {
    const s = await api.post<Session>('/api/session', { username, password, totp: totp || undefined })
    user.value = s.user
    setCsrfToken(s.csrfToken)
    await loadTowns()
  }

  async function logout(): Promise<void> {
    try {
      await api.del('/api/session')
    } finally {
      user.value = null
      setCsrfToken(null)
    }
  }

  function townName(id: string, locale: string): string {
    const t = towns.value.find((x) => x.id === id)
    if (!t) return id
    return locale === 'en-US' ? t.nameEn : t.nameZh
  }

  return { user, towns, checked, restore, login, logout, townName }
})
