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
    { path: '/broadcast', name: 'broadcast', component: () => import('./views/BroadcastView.vue') },
    { path: '/wall', name: 'wall', component: () => import('./views/WallView.vue') },
    { path: '/wall-window', name: 'wallWindow', component: () => import('./views/WallWindow.vue'), meta: { bare: true } },
    // the drill console (drill coordinators run drills; supervisors observe, auditors read)
    { path: '/drills', name: 'drills', component: () => import('./views/DrillView.vue') },
    { path: '/drills/history', name: 'drillHistory', component: () => import('./views/DrillHistoryView.vue') },
    // consult rooms: members from an incident, invited experts by link without a login
    { path: '/rooms/:id', name: 'room', component: () => import('./views/RoomView.vue'), props: true },
    { path: '/join/:invite', name: 'join', component: () => import('./views/RoomView.vue'), props: true, meta: { public: true } },
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue') },
    // the admin section (admins only: the guard below; dispatch refuses everyone else anyway)
    {
      path: '/admin',
      component: () => import('./views/admin/AdminLayout.vue'),
      meta: { admin: true },
      children: [
        { path: '', redirect: { name: 'admin-premises' } },
        { path: 'premises', name: 'admin-premises', component: () => import('./views/admin/PremisesAdmin.vue') },
        { path: 'cameras', name: 'admin-cameras', component: () => import('./views/admin/CamerasAdmin.vue') },
        { path: 'edges', name: 'admin-edges', component: () => import('./views/admin/EdgesAdmin.vue') },
        { path: 'teams', name: 'admin-teams', component: () => import('./views/admin/TeamsAdmin.vue') },
        { path: 'rosters', name: 'admin-rosters', component: () => import('./views/admin/RostersAdmin.vue') },
        { path: 'users', name: 'admin-users', component: () => import('./views/admin/UsersAdmin.vue') },
        { path: 'escalation', name: 'admin-escalation', component: () => import('./views/admin/EscalationAdmin.vue') },
        { path: 'warnings', name: 'admin-warnings', component: () => import('./views/admin/WarningsAdmin.vue') },
      ],
    },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  const session = useSession()
  if (!session.checked) await session.restore().catch(() => false)
  if (to.meta.public) return true
  if (to.name !== 'login' && !session.user) return { name: 'login', query: { next: to.fullPath } }
  if (to.name === 'login' && session.user) return { name: 'board' }
  if (to.matched.some((r) => r.meta.admin) && session.user?.role !== 'admin') return { name: 'board' }
  return true
})
