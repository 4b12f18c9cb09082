#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// errno values the Linux code compares against, named once.
let ENOTTY_VALUE: Int32 = ENOTTY
let EINVAL_VALUE: Int32 = EINVAL
let EBUSY_VALUE: Int32 = EBUSY
let EIO_VALUE: Int32 = EIO
let ENOENT_VALUE: Int32 = ENOENT
let EREMOTEIO_VALUE: Int32 = EREMOTEIO
let ENODEV_VALUE: Int32 = ENODEV
let EOPNOTSUPP_VALUE: Int32 = EOPNOTSUPP
