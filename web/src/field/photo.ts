// A phone photo as dispatch accepts it: JPEG, at most 1920 px on the long side (camera files are
// large, and some phones write HEIC, which dispatch does not take).
export async function toJpeg(file: Blob, maxSide = 1920): Promise<Blob> {
  const bitmap = await createImageBitmap(file)
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height))
  const canvas = document.createElement('canvas')
  canvas.width = Math.round(bitmap.width * scale)
  canvas.height = Math.round(bitmap.height * scale)
  canvas.getContext('2d')!.drawImage(bitmap, 0, 0, canvas.width, canvas.height)
  bitmap.close()
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('cannot encode the photo'))), 'image/jpeg', 0.85),
  )
}

/** The current position, or undefined after `timeoutMs` or a refusal. */
export function locate(timeoutMs = 8000): Promise<{ lat: number; lon: number } | undefined> {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(undefined)
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude }),
      () => resolve(undefined),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 60000 },
    )
  })
}

/** Amap (高德) navigation to a premises; Amap converts the WGS84 position itself. */
export function amapLink(lat: number, lon: number, name: string): string {
  const q = new URLSearchParams({ position: `${lon},${lat}`, name, coordinate: 'wgs84', callnative: '1' })
  return `https://uri.amap.com/marker?${q.toString()}`
}
