/**
 * Where the downloadable datasets come from: the dataset authors' own files,
 * with the MD5 sums they (or torchvision, for SVHN) publish and their exact
 * sizes. The archives are kept as downloaded; decoding reads them directly.
 *
 * Checksums: CIFAR-10/100 binary from https://www.cs.toronto.edu/~kriz/cifar.html
 * (the "md5sum" column); SVHN from torchvision.datasets.SVHN.split_list.
 */

export type DownloadableName = 'cifar10' | 'cifar100' | 'svhn';

export interface RemoteFile {
  /** The file's name in the dataset's folder (the URL's last segment). */
  name: string;
  url: string;
  /** Lower-case hex MD5 of the whole file. */
  md5: string;
  /** Exact size in bytes (for progress and messages; the MD5 decides). */
  bytes: number;
}

export interface DatasetSource {
  dataset: DownloadableName;
  /** Sub-folder of the data folder that holds the files. */
  folder: string;
  files: readonly RemoteFile[];
}

export type DatasetSources = Readonly<Record<DownloadableName, DatasetSource>>;

export const OFFICIAL_SOURCES: DatasetSources = {
  cifar10: {
    dataset: 'cifar10',
    folder: 'cifar10',
    files: [
      {
        name: 'cifar-10-binary.tar.gz',
        url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
        md5: 'c32a1d4ab5d03f1284b67883e8d87530',
        bytes: 170_052_171,
      },
    ],
  },
  cifar100: {
    dataset: 'cifar100',
    folder: 'cifar100',
    files: [
      {
        name: 'cifar-100-binary.tar.gz',
        url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
        md5: '03b5dce01913d631647c71ecec9e9cb8',
        bytes: 168_513_733,
      },
    ],
  },
  svhn: {
    dataset: 'svhn',
    folder: 'svhn',
    files: [
      {
        name: 'train_32x32.mat',
        url: 'http://ufldl.stanford.edu/housenumbers/train_32x32.mat',
        md5: 'e26dedcc434d2e4c54c9b2d4a06d8373',
        bytes: 182_040_794,
      },
      {
        name: 'test_32x32.mat',
        url: 'http://ufldl.stanford.edu/housenumbers/test_32x32.mat',
        md5: 'eb5a983be6a315427106f1b164d9cef3',
        bytes: 64_275_384,
      },
    ],
  },
};

export function isDownloadable(name: string): name is DownloadableName {
  return Object.hasOwn(OFFICIAL_SOURCES, name);
}

/**
 * Extra training data that is not a dataset of its own: files published
 * without a checksum, checked by their contents instead (the import reads
 * and validates every structure before writing anything).
 */
export interface ExtraRemoteFile {
  name: string;
  url: string;
  /** null: the authors publish no checksum. */
  md5: string | null;
  /** null: the authors publish no size. */
  bytes: number | null;
}

export interface ExtraSource {
  dataset: 'rst';
  folder: string;
  file: ExtraRemoteFile;
}

/**
 * RST's 500K pseudo-labelled TinyImages (Carmon et al. 2019), the link in
 * https://github.com/yaircarmon/semisup-adv's README (Google Drive id
 * 1LTw3Sb5QoiCCN-6Y5PEKkq9C9W60w-Hi; the usercontent URL with confirm=t
 * skips Drive's "cannot scan for viruses" page). No size or checksum is
 * published; `st-native data import-rst` checks the pickle's structure.
 */
export const RST_SOURCE: ExtraSource = {
  dataset: 'rst',
  folder: 'rst',
  file: {
    name: 'ti_500K_pseudo_labeled.pickle',
    url: 'https://drive.usercontent.google.com/download?id=1LTw3Sb5QoiCCN-6Y5PEKkq9C9W60w-Hi&export=download&confirm=t',
    md5: null,
    bytes: null,
  },
};
