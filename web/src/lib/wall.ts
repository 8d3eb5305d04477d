// The video wall's plain rules, shared by the desk and the wall window so that both show the
// same thing from the same data: which camera each tile shows (a tour's page, alarms on top),
// and the camera tree town → premises → camera.

/** What dispatch stores for a wall (GET/PUT /api/walls/{id}). */
export interface WallLayout {
  /** one entry per tile (1, 4, 6, 8, 9 or 16; the big tile of 6 and 8 first): a camera id or null */
  tiles: (string | null)[]
  maximised: number | null
  tour: { cameras: string[]; intervalSecs: number } | null
}

export interface Wall {
  id: string
  layout: WallLayout
  revision: number
  updatedAt: string | null
  updatedBy: string | null
}

/** A new immediate-tier incident that takes a tile until it is triaged. */
export interface Alarm {
  incidentId: string
  cameraId: string
  exercise: string | null
  /** the incident's kind and place, for the tile's banner */
  kind?: string
  place?: string
}

export interface ShownTile {
  camera: string | null
  alarm: Alarm | null
}

export const TILE_COUNTS = [1, 4, 6, 8, 9, 16] as const

/** Cells per side of the square grid of `n` tiles: 6 and 8 are 3×3 and 4×4 grids whose first
 * tile spans all cells but one row and column. */
export function side(n: number): number {
  if (n === 6) return 3
  if (n === 8) return 4
  return Math.max(1, Math.round(Math.sqrt(n)))
}

/** Cells per side of the first tile: the big one of the 6 and 8 layouts, else 1. */
export function firstSpan(n: number): number {
  return n === 6 || n === 8 ? side(n) - 1 : 1
}

/** The layout with `n` tiles: cameras kept in order, cut or padded with empty tiles. */
export function resize(layout: WallLayout, n: number): WallLayout {
  const tiles = Array.from({ length: n }, (_, i) => layout.tiles[i] ?? null)
  const maximised = layout.maximised !== null && layout.maximised < n ? layout.maximised : null
  return { ...layout, tiles, maximised }
}

/** The tour page shown at `now`: pages of `n` cameras, counted from `since`, so every screen
 * showing the wall shows the same page. */
export function tourPage(tour: NonNullable<WallLayout['tour']>, n: number, since: number, now: number): (string | null)[] {
  const pages = Math.max(1, Math.ceil(tour.cameras.length / n))
  const elapsed = Math.max(0, now - since)
  const page = Math.floor(elapsed / (tour.intervalSecs * 1000)) % pages
  return Array.from({ length: n }, (_, i) => tour.cameras[page * n + i] ?? null)
}

/** How many tiles alarms may take: at most half the wall (all of a single tile). */
export function alarmSlots(n: number): number {
  return n === 1 ? 1 : Math.floor(n / 2)
}

/** What each tile shows at `now`: the tour's page or the stored tiles, then the newest alarms
 * from the last tile backwards (the top-left tiles, where the eye starts, keep their cameras). */
export function shownTiles(wall: Pick<Wall, 'layout' | 'updatedAt'>, alarms: Alarm[], now: number): ShownTile[] {
  const { layout } = wall
  const n = layout.tiles.length
  const since = wall.updatedAt ? Date.parse(wall.updatedAt) : now
  const cameras = layout.tour ? tourPage(layout.tour, n, since, now) : layout.tiles
  const shown: ShownTile[] = cameras.map((camera) => ({ camera, alarm: null }))
  const newest = alarms.slice(-alarmSlots(n)).reverse()
  newest.forEach((alarm, k) => {
    shown[n - 1 - k] = { camera: alarm.cameraId, alarm }
  })
  return shown
}

export interface TreeCamera {
  id: string
  name: string
  premisesId: string
  premisesName: string
  townId: string
  online: boolean | null
}

export interface TreePremises {
  id: string
  name: string
  cameras: TreeCamera[]
  online: number
}

export interface TreeTown {
  id: string
  premises: TreePremises[]
  cameras: number
  online: number
  /** cameras whose state is reported at all (online or not) */
  reported: number
}

/** Cameras grouped town → premises, in the order of `towns` (the district's order), premises
 * and cameras by name; each group counts its online cameras. */
export function cameraTree(cameras: TreeCamera[], towns: string[]): TreeTown[] {
  const byTown = new Map<string, Map<string, TreePremises>>()
  for (const c of cameras) {
    const premises = byTown.get(c.townId) ?? new Map<string, TreePremises>()
    byTown.set(c.townId, premises)
    const p = premises.get(c.premisesId) ?? { id: c.premisesId, name: c.premisesName, cameras: [], online: 0 }
    premises.set(c.premisesId, p)
    p.cameras.push(c)
    if (c.online) p.online++
  }
  const order = (id: string) => {
    const i = towns.indexOf(id)
    return i < 0 ? towns.length : i
  }
  return [...byTown.entries()]
    .sort(([a], [b]) => order(a) - order(b) || a.localeCompare(b))
    .map(([id, premises]) => {
      const list = [...premises.values()].sort((a, b) => a.name.localeCompare(b.name, 'zh-CN'))
      list.forEach((p) => p.cameras.sort((a, b) => a.name.localeCompare(b.name, 'zh-CN') || a.id.localeCompare(b.id)))
      return {
        id,
        premises: list,
        cameras: list.reduce((s, p) => s + p.cameras.length, 0),
        online: list.reduce((s, p) => s + p.online, 0),
        reported: list.reduce((s, p) => s + p.cameras.filter((c) => c.online !== null).length, 0),
      }
    })
}
