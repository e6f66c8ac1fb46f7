//! Tensors on the host, by their open_clip names: what every reader produces and what the
//! model is built from.

use std::collections::BTreeMap;

/// A dense row-major f32 tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The transpose of a matrix.
    pub fn transposed(&self) -> Self {
        let [rows, cols] = self.shape[..] else {
            panic!("transposing a tensor of shape {:?}", self.shape);
        };
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Self::new(vec![cols, rows], data)
    }
}

/// Named tensors, sorted by name, so that every file written from them is deterministic.
pub type TensorMap = BTreeMap<String, HostTensor>;
