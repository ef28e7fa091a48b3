import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { alignFaces, fivePointsFrom68, templateFor, type Point } from './align.js';

const require = createRequire(import.meta.url);

/** A box in pixels. */
export interface Box { readonly x: number; readonly y: number; readonly width: number; readonly height: number }

/**
 * face-api's 68-point landmark net (weights from node_modules, offline), reduced to the 5
 * points of the ArcFace template. Runs on whichever tfjs backend is active.
 */
export class FaceLandmarker {
  private constructor(private readonly net: any) {}

  static async load(): Promise<FaceLandmarker> {
    const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
    const net = new faceapi.FaceLandmark68Net();
    await net.loadFromDisk(path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model'));
    return new FaceLandmarker(net);
  }

  /** 5 landmarks per image, searched inside `boxes[i]` of images[i] ([N, H, W, 3], 0..255). */
  async fivePoints(images: tf.Tensor4D, boxes: readonly Box[]): Promise<Point[][]> {
    return (await this.points68(images, boxes)).map(fivePointsFrom68);
  }

  /** The 68 iBUG landmarks per image (image pixels), searched inside `boxes[i]` of images[i] ([N, H, W, 3], 0..255). */
  async points68(images: tf.Tensor4D, boxes: readonly Box[]): Promise<Point[][]> {
    const [, h, w] = images.shape;
    const crops = tf.tidy(() => tf.unstack(tf.image.cropAndResize(images, boxes.map((b) => [b.y / h, b.x / w, (b.y + b.height) / h, (b.x + b.width) / w]), boxes.map((_, i) => i), [112, 112])) as tf.Tensor3D[]);
    try {
      const res = await this.net.detectLandmarks(crops.length === 1 ? crops[0] : crops);
      const list = (Array.isArray(res) ? res : [res]) as { positions: { x: number; y: number }[]; imageWidth: number; imageHeight: number }[];
      return list.map((l, i) => {
        const b = boxes[i]!;
        return l.positions.map((p): Point => [b.x + (p.x / l.imageWidth) * b.width, b.y + (p.y / l.imageHeight) * b.height]);
      });
    } finally {
      tf.dispose(crops);
    }
  }

  dispose(): void { this.net.dispose(); }
}

/** The template for `size`, zoomed about the image centre (zoom < 1 keeps more context). */
export function zoomedTemplate(size: number, zoom: number): Point[] {
  const c = size / 2;
  const base = size % 112 === 0 || size % 128 === 0 ? templateFor(size) : templateFor(112).map(([x, y]) => [(x * size) / 112, (y * size) / 112] as Point);
  return base.map(([x, y]) => [c + (x - c) * zoom, c + (y - c) * zoom]);
}

/** Landmarks in a centred box (for pre-cropped sets like LFW deep-funneled), then 5-point alignment. */
export async function alignCentred(lm: FaceLandmarker, images: tf.Tensor4D, o: { box: number; size: number; zoom: number }): Promise<tf.Tensor4D> {
  const [n, h, w] = images.shape;
  const side = Math.min(h, w) * o.box;
  const box: Box = { x: (w - side) / 2, y: (h - side) / 2, width: side, height: side };
  const points = await lm.fivePoints(images, Array.from({ length: n }, () => box));
  return alignFaces(images, points, o.size, zoomedTemplate(o.size, o.zoom));
}
