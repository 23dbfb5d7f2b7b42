;; Declares a 64-bit memory (memory64 proposal).
(module
  (memory (export "memory") i64 1)
  (func (export "_start")))
