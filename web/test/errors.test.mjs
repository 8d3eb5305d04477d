// Every error code dispatch answers with (its error::CODES, published as the enum of
// ErrorInner.code in docs/reference/openapi.json) has its words in both languages, and the apps
// show those words rather than the server's English message.
import test from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { errorCodes, fieldRules, fileProblems } from '../.unit/i18n/errors.js'
import { errorText, fieldErrorText, fileProblemText } from '../.unit/lib/errorText.js'

const openapi = JSON.parse(fs.readFileSync(new URL('../../docs/reference/openapi.json', import.meta.url), 'utf8'))
const serverCodes = openapi.components.schemas.ErrorInner.properties.code.enum

test('the OpenAPI document lists the server’s error codes', () => {
  assert.ok(Array.isArray(serverCodes) && serverCodes.length > 40, `ErrorInner.code.enum: ${serverCodes}`)
})

for (const locale of ['zh-CN', 'en-US']) {
  test(`every server error code has a ${locale} text`, () => {
    const missing = serverCodes.filter((c) => !(typeof errorCodes[locale][c] === 'string' && errorCodes[locale][c].trim()))
    assert.deepEqual(missing, [], `add them to web/src/i18n/errors.ts (${locale})`)
  })
}

test('the zh-CN texts are Chinese, not the server’s English', () => {
  const english = Object.entries(errorCodes['zh-CN']).filter(([, text]) => !/[\u4e00-\u9fff]/.test(text))
  assert.deepEqual(english, [])
})

test('an error shows its code’s words; an unknown code shows the server’s message', () => {
  const words = errorCodes['zh-CN']
  const te = (key) => key.startsWith('error.code.') && key.slice(11) in words
  const t = (key, p) => words[key.slice(11)].replace('{field}', p.field)
  const e = (code, field = null) => Object.assign(new Error('field mainStream: must be rtsp://'), { code, field })
  assert.equal(errorText(e('out_of_scope'), t, te), words.out_of_scope)
  assert.equal(errorText(e('invalid_field', 'mainStream'), t, te), '“mainStream”填写不正确，请检查。')
  assert.equal(errorText(e('brand_new_code'), t, te), 'field mainStream: must be rtsp://')
  assert.equal(errorText('offline', t, te), 'offline')
})

test('a refused form field shows its rule in the UI’s language, not the server’s English', () => {
  const words = { 'error.atField': '此项填写不正确：{detail}', 'error.code.invalid_field': '“{field}”填写不正确，请检查。' }
  for (const [k, v] of Object.entries(fieldRules['zh-CN'])) words[`error.fieldRule.${k}`] = v
  const te = (key) => key in words
  const t = (key, p = {}) => words[key].replace(/\{(\w+)\}/g, (_, k) => p[k])
  const e = (field) => Object.assign(new Error(`field ${field}: must not carry credentials`), { code: 'invalid_field', field })
  assert.equal(fieldErrorText(e('mainStream'), t, te), `此项填写不正确：${fieldRules['zh-CN'].mainStream}`)
  assert.equal(fieldErrorText(e('shifts[1].weekdays'), t, te), `此项填写不正确：${fieldRules['zh-CN'].weekdays}`)
  assert.doesNotMatch(fieldErrorText(e('mainStream'), t, te), /credentials/, 'not the server’s English')
  assert.equal(fieldErrorText(e('somethingNew'), t, te), '“somethingNew”填写不正确，请检查。')
  assert.deepEqual(Object.keys(fieldRules['en-US']).sort(), Object.keys(fieldRules['zh-CN']).sort())
})

test('a refused line of a CSV import is worded in the UI’s language', () => {
  const words = {}
  for (const [k, v] of Object.entries(fieldRules['zh-CN'])) words[`error.fieldRule.${k}`] = v
  for (const [k, v] of Object.entries(fileProblems['zh-CN'])) words[`error.fileProblem.${k}`] = v
  const te = (key) => key in words
  const t = (key) => words[key]
  const d = (column, code, message = 'English') => ({ line: 3, column, code, message })
  assert.equal(fileProblemText(d('risk_grade', 'invalid_field'), t, te), fieldRules['zh-CN'].riskGrade)
  assert.equal(fileProblemText(d('licence_no', 'duplicate_licence'), t, te), fileProblems['zh-CN'].duplicate_licence)
  assert.equal(fileProblemText(d('weird', 'invalid_field'), t, te), fileProblems['zh-CN'].invalid_field)
  assert.equal(fileProblemText(d('x', 'brand_new', 'server words'), t, te), 'server words')
  assert.deepEqual(Object.keys(fileProblems['en-US']).sort(), Object.keys(fileProblems['zh-CN']).sort())
})
