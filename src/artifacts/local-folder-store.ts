// The default artifact store: one folder, one sub-folder per job. Files are written to a
// temporary name and renamed into place, so a concurrent reader sees the old file or the whole
// new one. Web and worker processes on one machine share it by pointing at the same folder.
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomToken } from "../core/ids.ts";
import { type ArtifactBody, type ArtifactInfo, type ArtifactStore, type StoredArtifact, checkArtifactKey, isArtifactName } from "./store.ts";
import { isJobId } from "../core/ids.ts";

/** Where artifacts go when nobody says: $OFFLOAD_ARTIFACTS_DIR, else ./.offload/artifacts. */
export function defaultArtifactsDir(): string {
  return resolve(process.env["OFFLOAD_ARTIFACTS_DIR"] ?? ".offload/artifacts");
}

export class LocalFolderStore implements ArtifactStore {
  readonly dir: string;

  constructor(dir: string = defaultArtifactsDir()) {
    this.dir = resolve(dir);
  }

  async put(jobId: string, name: string, body: ArtifactBody): Promise<ArtifactInfo> {
    checkArtifactKey(jobId, name);
    const folder = join(this.dir, jobId);
    await mkdir(folder, { recursive: true });
    const target = join(folder, name);
    // The temporary name starts with "." so list() never shows a file still being written.
    const temporary = join(folder, `.${name}.${randomToken().slice(0, 8)}.tmp`);
    let size: number;
    try {
      await pipeline(toNodeReadable(body), createWriteStream(temporary));
      // The size of what this call wrote, taken before the rename: after it, a concurrent put of
      // the same name may already have replaced the file.
      size = (await stat(temporary)).size;
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    return { jobId, name, size };
  }

  async get(jobId: string, name: string): Promise<StoredArtifact | undefined> {
    if (!isJobId(jobId) || !isArtifactName(name)) return undefined;
    const path = join(this.dir, jobId, name);
    // lstat: only files the store wrote are served, never what a symbolic link points at.
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const body = Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
    return { jobId, name, size: info.size, body };
  }

  async list(jobId: string): Promise<ArtifactInfo[]> {
    if (!isJobId(jobId)) return [];
    const folder = join(this.dir, jobId);
    const names = await readdir(folder).catch(() => [] as string[]);
    const infos: ArtifactInfo[] = [];
    for (const name of names.filter(isArtifactName).sort()) {
      const info = await lstat(join(folder, name)).catch(() => undefined);
      if (info?.isFile()) infos.push({ jobId, name, size: info.size });
    }
    return infos;
  }

  async remove(jobId: string): Promise<void> {
    if (isJobId(jobId)) await rm(join(this.dir, jobId), { recursive: true, force: true });
  }
}

function toNodeReadable(body: ArtifactBody): Readable {
  if (typeof body === "string" || body instanceof Uint8Array) return Readable.from([typeof body === "string" ? Buffer.from(body) : body]);
  if (body instanceof ReadableStream) return Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>);
  return Readable.from(body);
}
