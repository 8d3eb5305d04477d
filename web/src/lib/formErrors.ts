// Server errors shown where they belong: an error naming a field (`error.field`, the JSON name)
// goes next to that form item; anything else above the form. Views bind `errors.byField[prop]` to
// `<el-form-item :error>` and `errors.general` to an alert.
import { reactive } from 'vue'
import { useI18n } from 'vue-i18n'
import { ApiError } from '../api/client'
import { formProp } from './admin'
import { errorText, fieldErrorText } from './errorText'

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
        // next to the field (so which field is plain), with its rule in the UI's language
        errors.byField = { [formProp(e.field)]: fieldErrorText(e, t, te) }
        return true
      }
      errors.general = errorText(e, t, te)
      return false
    },
  }
}
