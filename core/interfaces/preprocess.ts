/**
 * What a model expects of its input pixels. Data sources hand out float32 RGB images in
 * 0..255 at their stored size; each model adapter resizes and normalises to its contract.
 */
export interface PreprocessContract {
  /** [height, width] the network runs at. */
  readonly inputSize: readonly [number, number];
  readonly colour: 'rgb' | 'bgr';
  /** raw255: 0..255 as is; unit: x/255; symmetric: (x/255 - 0.5)/0.5. */
  readonly normalise: 'raw255' | 'unit' | 'symmetric';
  /** Free text describing the crop or alignment the weights were trained with. */
  readonly crop: string;
}
