// Console routes. dispatch answers index.html for these paths (api/web.rs), so links such as a
// notification's /incidents/{id} open straight in the console.
import { createRouter, createWebHistory } from 'vue-router'
import { useSession } from '../stores/session'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', name: 'board', component: () => import('./views/BoardView.vue') },
    { path: '/incidents/:id', name: 'triage', component: () => import('./views/TriageView.vue'), props: true },
    { path: '/map', name: 'map', component: () => import('./views/MapView.vue') },
    { path: '/dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue') },
    // the video wall: the desk, and the full-screen window for a wall monitor (no top bar)
    { path: '/wall', name: 'wall', component: () => import('./views/WallView.vue') },
    { path: '/wall-window', name: 'wallWindow', component: () => import('./views/WallWindow.vue'), meta: { bare: true } },
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue') },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  const session = useSession()
  if (!session.checked) await session.restore().catch(() => false)
  if (to.name !== 'login' && !session.user) return { name: 'login', query: { next: to.fullPath } }
  if (to.name === 'login' && session.user) return { name: 'board' }
  return true
})
