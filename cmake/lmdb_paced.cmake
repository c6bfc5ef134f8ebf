# Builds liblmdb_paced.a: LMDB's objects from ARCHIVE (Debian's liblmdb.a)
# with their pwrite, writev and fdatasync calls renamed to chatcore_lmdb_*
# (adapters/lmdb/writeback.hpp says why). Run by CMakeLists.txt as
#   cmake -DARCHIVE=... -DOUTPUT=... -DAR=... -DOBJCOPY=... -P lmdb_paced.cmake
foreach(var ARCHIVE OUTPUT AR OBJCOPY)
  if(NOT ${var})
    message(FATAL_ERROR "lmdb_paced.cmake: ${var} not set")
  endif()
endforeach()
get_filename_component(dir ${OUTPUT} DIRECTORY)
set(objects_dir ${dir}/objects)
file(REMOVE_RECURSE ${objects_dir})
file(MAKE_DIRECTORY ${objects_dir})
execute_process(COMMAND ${AR} x ${ARCHIVE} WORKING_DIRECTORY ${objects_dir}
                COMMAND_ERROR_IS_FATAL ANY)
file(GLOB objects ${objects_dir}/*.o)
if(NOT objects)
  message(FATAL_ERROR "lmdb_paced.cmake: no objects in ${ARCHIVE}")
endif()
foreach(object ${objects})
  execute_process(COMMAND ${OBJCOPY}
                    --redefine-sym pwrite=chatcore_lmdb_pwrite
                    --redefine-sym writev=chatcore_lmdb_writev
                    --redefine-sym fdatasync=chatcore_lmdb_fdatasync
                    ${object}
                  COMMAND_ERROR_IS_FATAL ANY)
endforeach()
file(REMOVE ${OUTPUT})
execute_process(COMMAND ${AR} rcs ${OUTPUT} ${objects} COMMAND_ERROR_IS_FATAL ANY)
