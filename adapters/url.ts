/** Joining the URLs sites advertise with the paths the adapters add. */

/** `url` without trailing slashes. */
export function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** `path` below `base` (one slash between), or `path` itself when it is already an absolute http(s) URL. */
export function joinUrl(base: string, path: string): string {
  return /^https?:\/\//.test(path) ? stripSlash(path) : `${stripSlash(base)}${path.startsWith('/') ? '' : '/'}${stripSlash(path)}`;
}
