// Server errors shown where they belong: an error naming a field (`error.field`, the JSON name)
// goes next to that form item; anything else above the form. Views bind `errors.byField[prop]` to
// `<el-form-item :error>` and `errors.general` to an alert.
import { reactive } from 'vue'
import { ApiError } from '../api/client'
import { fieldMessage, formProp } from './admin'

export function useServerErrors() {
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
        errors.byField = { [formProp(e.field)]: fieldMessage(e.message) }
        return true
      }
      errors.general = e instanceof Error ? e.message : String(e)
      return false
    },
  }
}
