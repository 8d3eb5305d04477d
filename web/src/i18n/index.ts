import { createI18n, useI18n } from 'vue-i18n'
import { errorText } from '../lib/errorText'
import zhCN from './zh-CN'
import enUS from './en-US'

export type Locale = 'zh-CN' | 'en-US'
const KEY = 'bl.locale'

function initial(): Locale {
  const saved = localStorage.getItem(KEY)
  return saved === 'en-US' ? 'en-US' : 'zh-CN'
}

export const i18n = createI18n({
  legacy: false,
  locale: initial(),
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zhCN, 'en-US': enUS },
})

export function setLocale(l: Locale): void {
  i18n.global.locale.value = l
  localStorage.setItem(KEY, l)
  document.documentElement.lang = l
}

/** A failed request in the UI's language (dispatch's error code; see src/i18n/errors.ts). */
export function useErrorText(): (e: unknown) => string {
  const { t, te } = useI18n()
  return (e) => errorText(e, t, te)
}
