# One library target per module of src/, with only the dependencies the architecture allows.
#
#   switchyard_module(<name> SOURCES <files> [DEPENDS <modules>] [LIBS <external targets>])
#
# The graph is acyclic by construction: a module may depend only on modules declared before it
# (configuring fails otherwise). The build enforces it on the sources: before a module's library
# is compiled, every `#include "<dir>/..."` of src/<name>/ is checked against the modules it may
# use (itself and its declared dependencies, transitively); an include of any other module fails
# the build, naming the file. `check-headers` compiles every header of every module on its own.

set(SWITCHYARD_SRC ${CMAKE_SOURCE_DIR}/src)
add_custom_target(check-headers)

function(switchyard_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPENDS;LIBS" ${ARGN})
  set(allowed ${name})
  foreach(dep IN LISTS M_DEPENDS)
    if(NOT TARGET switchyard_${dep})
      message(FATAL_ERROR "module ${name} depends on ${dep}, which is not declared before it: "
                          "modules are declared in dependency order, so that the graph has no cycle")
    endif()
    get_property(closure GLOBAL PROPERTY SWITCHYARD_ALLOWED_${dep})
    list(APPEND allowed ${closure})
  endforeach()
  list(REMOVE_DUPLICATES allowed)
  set_property(GLOBAL PROPERTY SWITCHYARD_ALLOWED_${name} ${allowed})

  add_library(switchyard_${name} STATIC ${M_SOURCES})
  target_include_directories(switchyard_${name} PUBLIC ${SWITCHYARD_SRC})
  list(TRANSFORM M_DEPENDS PREPEND switchyard_ OUTPUT_VARIABLE dep_targets)
  target_link_libraries(switchyard_${name} PUBLIC ${dep_targets} ${M_LIBS})

  file(GLOB_RECURSE files CONFIGURE_DEPENDS ${SWITCHYARD_SRC}/${name}/*.hpp ${SWITCHYARD_SRC}/${name}/*.cpp)
  set(stamp ${CMAKE_BINARY_DIR}/module-includes/${name}.ok)
  string(REPLACE ";" "," allowed_text "${allowed}")
  add_custom_command(
    OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DMODULE=${name} -DALLOWED=${allowed_text} -DROOT=${SWITCHYARD_SRC}
            -DSTAMP=${stamp} -P ${CMAKE_SOURCE_DIR}/cmake/check_includes.cmake
    DEPENDS ${files} ${CMAKE_SOURCE_DIR}/cmake/check_includes.cmake
    COMMENT "Checking the includes of module ${name} (may use: ${allowed_text})")
  add_custom_target(switchyard_${name}_includes DEPENDS ${stamp})
  add_dependencies(switchyard_${name} switchyard_${name}_includes)

  # Each header compiled alone (EXCLUDE_FROM_ALL: built by `check-headers` only).
  set(units)
  foreach(header IN LISTS files)
    if(NOT header MATCHES "\\.hpp$")
      continue()
    endif()
    file(RELATIVE_PATH rel ${SWITCHYARD_SRC} ${header})
    string(MAKE_C_IDENTIFIER ${rel} id)
    set(unit ${CMAKE_BINARY_DIR}/check-headers/${id}.cpp)
    if(NOT EXISTS ${unit})
      file(WRITE ${unit} "#include \"${rel}\"\n#include \"${rel}\"\n")
    endif()
    list(APPEND units ${unit})
  endforeach()
  if(units)
    add_library(switchyard_${name}_headers OBJECT EXCLUDE_FROM_ALL ${units})
    target_link_libraries(switchyard_${name}_headers PRIVATE switchyard_${name})
    add_dependencies(check-headers switchyard_${name}_headers)
  endif()
endfunction()
