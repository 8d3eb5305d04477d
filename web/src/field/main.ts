import { createApp } from 'vue'
import { createPinia } from 'pinia'
import ElementPlus from 'element-plus'
import 'element-plus/dist/index.css'
import '../styles/field.css'
import FieldApp from './FieldApp.vue'
import { i18n } from '../i18n'

createApp(FieldApp).use(createPinia()).use(i18n).use(ElementPlus).mount('#app')

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/field-sw.js', { scope: '/field' }).catch(() => {
    /* the app works without it; it only opens offline with it */
  })
}
