;; Throws and catches with the legacy exception instructions.
(module
  (tag $oops)
  (memory (export "memory") 1)
  (func (export "_start")
    try
      throw $oops
    catch $oops
    end))
