;; A library-style module: no _start, an _initialize that sets a global.
(module
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "ready") (result i32) (global.get $ready)))
