;; Uses an atomic load on an ordinary memory (threads proposal).
(module
  (memory (export "memory") 1)
  (func (export "_start") (drop (i32.atomic.load (i32.const 0)))))
