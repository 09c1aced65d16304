/** fetch, then the body as JSON, typed loosely for assertions. */
export async function getJson (url: string, init?: RequestInit): Promise<any> {
  return await (await fetch(url, init)).json()
}

/** A response's body as JSON, typed loosely for assertions. */
export async function bodyOf (res: Response): Promise<any> {
  return await res.json()
}
