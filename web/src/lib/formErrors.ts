// Server errors shown where they belong: an error naming a field (`error.field`, the JSON name)
// goes next to that form item; anything else above the form. Views bind `errors.byField[prop]` to
// `<el-form-item :error>` and `errors.general` to an alert.
import { reactive } from 'vue'
import { useI18n } from 'vue-i18n'
import { ApiError } from '../api/client'
import { fieldMessage, formProp } from './admin'
import { errorText } from './errorText'

export function useServerErrors() {
  const { t, te } = useI18n()
  const errors = reactive({ byField: {} as Record<string, string>, general: '' })
  return {
    errors,
    clear(): void {
      errors.byField = {}
      errors.general = ''
    },
    /** Files an error; returns true when it named a field. */
    show(e: unknown): boolean {
      errors.byField = {}
      errors.general = ''
      if (e instanceof ApiError && e.field) {
        // next to the field (so which field is plain): that it is invalid in the UI's language, with
        // the rule in the server's words (field rules have no codes of their own)
        const text = e.code === 'invalid_field' ? t('error.atField', { detail: fieldMessage(e.message) }) : errorText(e, t, te)
        errors.byField = { [formProp(e.field)]: text }
        return true
      }
      errors.general = errorText(e, t, te)
      return false
    },
  }
}
